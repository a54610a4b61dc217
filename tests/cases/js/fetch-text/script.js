const res = await fetch(`${args.base}/stream?n=2048`);
const body = await res.text();
return body.length;
