// Creates about 100 MB of objects over its run (more than the 64 MiB limit)
// but keeps almost none alive: the collector frees them and the memory is
// reused, so the action stays inside its limit (the crossing case is
// growing-array).
let total = 0;
for (let i = 0; i < 400000; i++) {
  const o = { i, list: [i, i + 1], label: "n" + i };
  total += o.list[1] - o.i;
}
return total;
