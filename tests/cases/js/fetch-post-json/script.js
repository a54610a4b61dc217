const res = await fetch(`${args.base}/echo`, { method: "POST", headers: { Authorization: "Bearer " + args.token }, body: JSON.stringify({ q: 1 }) });
return await res.json();
