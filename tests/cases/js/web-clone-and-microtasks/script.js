const original = { when: new Date(0), tags: new Set(["a"]), map: new Map([["k", { n: 1 }]]), bytes: new Uint8Array([1, 2]), re: /x/gi, list: [1, { deep: true }] };
original.self = original;
const copy = structuredClone(original);
let fnError;
try { structuredClone({ f() {} }); } catch (e) { fnError = `${e.name} ${e instanceof DOMException}`; }
const order = [];
queueMicrotask(() => order.push("microtask"));
setTimeout(() => order.push("timer"), 0);
order.push("sync");
await new Promise((r) => setTimeout(r, 5));
return {
  distinct: copy !== original && copy.list[1] !== original.list[1] && copy.map.get("k") !== original.map.get("k"),
  cycle: copy.self === copy,
  date: copy.when instanceof Date && copy.when.getTime() === 0,
  set: copy.tags instanceof Set && copy.tags.has("a"),
  map: copy.map.get("k").n,
  bytes: Array.from(copy.bytes),
  re: [copy.re.source, copy.re.flags],
  fnError,
  order,
};
