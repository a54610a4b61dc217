// Each builder keeps its own pending changes, privately; `new` works as well
// as a plain call; the warm-up run before the snapshot leaves nothing behind
// (no helper globals, and `args` is this invocation's).
const kept = new ChatlayerResponseBuilder().addMessage("never sent");
const sent = ChatlayerResponseBuilder().addMessage("only this one");
sent.send();
return {
  keys: Object.keys(kept),
  json: JSON.stringify(kept),
  chained: kept.addMessage("again") === kept,
  helper: typeof ResponseBuilder,
  argsId: args.id ?? null,
};
