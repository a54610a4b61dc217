// Runs once before the snapshot, through the same path as a code action, so
// that every invocation finds the builder's object shapes, the prelude's
// property caches and common names already made. No host calls here (they
// trap while the snapshot is built), nothing random, no globals left behind.
ChatlayerResponseBuilder()
  .addSessionVariable("order", { id: args.id, total: 1.5, items: [1, 2] })
  .setSessionVariable("customer", "name")
  .addMessage(`text ${args.id}`)
  .addQuickReplies({ title: "t", quickReplies: [{ type: "postback", title: "a", payload: "p" }] })
  .addButtonGroup({ title: "t", buttons: [] })
  .addCarousel([])
  .addMediaMessage({ type: "image", url: "u" })
  .addHtml("h")
  .addIframe("u", { height: 1 })
  .setNextDialogState("next");
ChatlayerResponseBuilder().send();
await null;
return { ok: true, list: [1, "two", null], nested: { id: args.id } };
