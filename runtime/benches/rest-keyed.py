"""What an Idempotency-Key costs a REST conversation action (docs/BENCHMARKS.md).

Start `target/release/sandbot serve` (the example bots, token demo-token) from the
repository root, then run this: 4 rounds of 55 actions without and 55 with a fresh key,
alternating, one keep-alive connection; prints the p50 and p90 latency of each kind.
"""
import http.client, json, time, statistics, os
RUN = os.urandom(4).hex()
H = {"authorization": "Bearer demo-token", "content-type": "application/json"}
c = http.client.HTTPConnection("127.0.0.1", 8080)
def req(method, path, body=None, extra=None):
    h = dict(H); h.update(extra or {})
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse(); data = r.read(); return r.status, data
# a conversation
st, d = req("POST", "/v1/channels/webhook/meetups/messages", {"conversationId": "bench-1", "message": {"introMessage": {}}})
print("intro", st, d[:100])
time.sleep(1)
body = {"sendMessages": [{"textMessageTemplate": {"text": "An agent here"}}]}
res = {"no key": [], "key": []}
for rnd in range(4):
    for kind in (["no key", "key"] if rnd % 2 == 0 else ["key", "no key"]):
        for i in range(55):
            extra = {"idempotency-key": f"k-{RUN}-{rnd}-{i}"} if kind == "key" else None
            t = time.perf_counter()
            st, d = req("POST", "/v1/bots/meetups/conversations/bench-1/actions", body, extra)
            res[kind].append((time.perf_counter() - t) * 1000)
            assert st == 200, (st, d)
for k, v in res.items():
    v.sort()
    print(k, "n", len(v), "p50 %.2f ms" % statistics.median(v), "p90 %.2f ms" % v[int(len(v)*0.9)])
