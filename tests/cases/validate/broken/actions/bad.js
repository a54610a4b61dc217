const builder = ChatlayerResponseBuilder();
builder.addMessage("unclosed;
builder.send();
