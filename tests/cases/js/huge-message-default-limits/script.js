ChatlayerResponseBuilder().addMessage('x'.repeat(50 * 1024 * 1024)).send();
