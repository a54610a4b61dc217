"""The Python kit's edge cases: the same `input.case` names and answers as
the Rust test guest (guest-sdk/test-guest), run by tests/all/sandbox_cases.rs
(KIT_CASES) against guest-sdk/py-kit/test-guest-py.wasm."""

import sandbot
from sandbot import ActionError, conversation, http, session


def _session(input: dict):
    count = session.get("counter") or 0
    session.set("counter", count + 1)
    session.set("user.address.city", "Ghent")
    session.set("items[0]", "a")
    session.set("items[1]", {"sku": "b"})
    session.remove("obsolete")
    seen = session.get("user.address.city")
    conversation.say(f"counter was {count}")
    conversation.goto("first")
    conversation.goto(input.get("next", "done"))
    conversation.info("session case done")
    return {"seen": seen}


def _write_internal(input: dict):
    session.set("internal.botId", "stolen")


def _set_then_fail(input: dict):
    session.set("user.flag", True)
    conversation.say("should never be delivered")
    conversation.goto("never")
    raise ActionError("on_purpose", "failing after writes")


def _fetch_result(input: dict):
    r = http.fetch(input.get("url", "https://example.com/"))
    return {"status": r.status} if r.ok else {"error": r.error}


def _spin(input: dict):
    while True:
        pass


def _work(input: dict):
    x = 0
    for i in range(input.get("n", 0)):
        x = (x * 31 + i) % 1000003
    return x


def _alloc(input: dict):
    chunks = []
    while not input.get("n") or len(chunks) < input["n"]:
        chunks.append(bytearray(b"\x01" * (1 << 20)))
    return len(chunks)


CASES = {"noop": lambda input: None, "session": _session, "write_internal": _write_internal,
         "set_then_fail": _set_then_fail, "fetch_result": _fetch_result, "spin": _spin,
         "work": _work, "alloc": _alloc}


def run(input: dict):
    case = CASES.get(input.get("case", "noop"))
    if case is None:
        raise ActionError("unknown_case", f"no case `{input.get('case')}`")
    return case(input)


WitWorld = sandbot.action(run)
