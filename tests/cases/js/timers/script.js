const order = [];
setTimeout(() => order.push("b"), 40);
const cancelled = setTimeout(() => order.push("never"), 10);
setTimeout(() => order.push("a"), 20);
clearTimeout(cancelled);
await new Promise((r) => setTimeout(r, 60));
return order;
