// The JS kit's edge cases: the same `input.case` names and answers as the
// Rust test guest (guest-sdk/test-guest), run by tests/all/sandbox_cases.rs
// (KIT_CASES) against guest-sdk/js-kit/test-guest-js.wasm.
import { ActionError, action, conversation, http, session } from "sandbot-kit";

const cases = {
  noop: () => null,
  session: (input) => {
    const count = session.get("counter") ?? 0;
    session.set("counter", count + 1);
    session.set("user.address.city", "Ghent");
    session.set("items[0]", "a");
    session.set("items[1]", { sku: "b" });
    session.remove("obsolete");
    const seen = session.get("user.address.city");
    conversation.say(`counter was ${count}`);
    conversation.goto("first");
    conversation.goto(input.next ?? "done");
    conversation.info("session case done");
    return { seen };
  },
  write_internal: () => {
    session.set("internal.botId", "stolen");
    return null;
  },
  set_then_fail: () => {
    session.set("user.flag", true);
    conversation.say("should never be delivered");
    conversation.goto("never");
    throw new ActionError("on_purpose", "failing after writes");
  },
  fetch_result: (input) => {
    const r = http.fetch(input.url ?? "https://example.com/");
    return r.ok ? { status: r.status } : { error: r.error };
  },
  spin: () => {
    for (;;);
  },
  work: (input) => {
    let x = 0;
    for (let i = 0; i < (input.n ?? 0); i++) x = (x * 31 + i) % 1000003;
    return x;
  },
  alloc: (input) => {
    const chunks = [];
    while (!input.n || chunks.length < input.n) chunks.push(new Uint8Array(1 << 20).fill(1));
    return chunks.length;
  },
};

export const run = action((input) => {
  const c = cases[input.case ?? "noop"];
  if (!c) throw new ActionError("unknown_case", `no case \`${input.case}\``);
  return c(input);
});
