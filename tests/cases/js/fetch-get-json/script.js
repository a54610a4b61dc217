const res = await fetch(`${args.base}/json`, { headers: { accept: "application/json" } });
if (!res.ok) throw new Error("lookup failed: " + res.status);
const data = await res.json();
ChatlayerResponseBuilder().addSessionVariable("api", data).send();
return { status: res.status, statusText: res.statusText, type: res.headers.get("Content-Type"), data };
