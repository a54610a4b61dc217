// Boa's collector counts objects, not the bytes of their buffers: 800 KB typed
// arrays dropped at once still pile up until the memory limit. The engine
// reports the failed allocation as a RangeError; the cause is the limit.
let total = 0;
for (let round = 0; round < 1000; round++) {
  const block = new Float64Array(100000);
  block[99999] = round;
  total += block[99999];
}
return total;
