ChatlayerResponseBuilder().addSessionVariable("half", { done: true }).send();
const order = args.order;
throw new Error("no order " + order);
