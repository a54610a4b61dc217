const controller = new AbortController();
const seen = [];
controller.signal.addEventListener("abort", () => seen.push("event"));
controller.abort();
let aborted;
try { await fetch(`${args.base}/json`, { signal: controller.signal }); } catch (e) { aborted = `${e.name} ${e instanceof DOMException}`; }
let timedOut;
const started = Date.now();
try { await fetch(`${args.base}/slow?ms=3000`, { signal: AbortSignal.timeout(200) }); } catch (e) { timedOut = e.name; }
const waited = Date.now() - started;
const custom = AbortSignal.abort("why");
const ok = await fetch(`${args.base}/json`, { signal: new AbortController().signal });
return { seen, aborted, timedOut, quick: waited < 2000, reason: custom.reason, ok: ok.status };
