const chunk = 'x'.repeat(1024 * 1024);
ChatlayerResponseBuilder().addMessage(new Array(50).fill(chunk).join('')).send();
