"""The Sandbot kit for Python plugins (componentize-py).

The sandbot:action world's imports as plain Python values, and `action()`
to write `run` as a function of the parsed input::

    import sandbot

    def greet(args: dict) -> dict:
        name = sandbot.session.get("user.firstName") or "there"
        sandbot.conversation.say(f"Hello {name}!")
        return {"greeted": name}

    WitWorld = sandbot.action(greet)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import budget as _budget
from wit_world.imports import conversation as _conversation
from wit_world.imports import http as _http
from wit_world.imports import session as _session


class ActionError(Exception):
    """Your own failure: the flow goes to *Error occurred*, nothing you wrote applies."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class session:
    """The conversation's session (paths like `user.address.city`, `items[0]`)."""

    @staticmethod
    def get(path: str) -> Any:
        """The value at `path`, or None."""
        found = _session.get(path)
        return None if found is None else json.loads(found)

    @staticmethod
    def set(path: str, value: Any) -> None:
        """Sets `path` (applied when the action succeeds)."""
        try:
            _session.set(path, json.dumps(value))
        except Err as e:
            raise ActionError("session_write", str(e.value)) from None

    @staticmethod
    def remove(path: str) -> None:
        try:
            _session.remove(path)
        except Err as e:
            raise ActionError("session_write", str(e.value)) from None


class conversation:
    @staticmethod
    def say(message: str | dict) -> None:
        """Says a text, or a Chatlayer message object."""
        if isinstance(message, str):
            message = {"type": "text", "config": {"textMessages": [{"text": message}]}}
        try:
            _conversation.say(json.dumps(message))
        except Err as e:
            raise ActionError("invalid_message", str(e.value)) from None

    @staticmethod
    def goto(block: str) -> None:
        """The block to continue with (the last call wins)."""
        _conversation.goto(block)

    @staticmethod
    def log(level: str, text: str) -> None:
        _conversation.log(_conversation.Level[level.upper()], text)

    @staticmethod
    def info(text: str) -> None:
        _conversation.log(_conversation.Level.INFO, text)

    @staticmethod
    def warn(text: str) -> None:
        _conversation.log(_conversation.Level.WARN, text)


@dataclass
class Response:
    """A fetch's answer; `ok` is False (and `error` says why) when it was refused or failed."""

    ok: bool
    status: int = 0
    body: bytes = b""
    headers: Optional[dict] = None
    url: str = ""
    error: Optional[str] = None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def _describe(e: Any) -> str:
    """The Rust SDK's wording (http::describe)."""
    if isinstance(e, _http.HttpError_Denied):
        return f"egress denied: {e.value}"
    if isinstance(e, _http.HttpError_Timeout):
        return "request timed out"
    if isinstance(e, _http.HttpError_TooLarge):
        return f"too large: {e.value}"
    if isinstance(e, _http.HttpError_InvalidRequest):
        return f"invalid request: {e.value}"
    return f"transport error: {getattr(e, 'value', e)}"


class http:
    @staticmethod
    def fetch(url: str, method: str = "GET", headers: Optional[dict] = None,
              body: str | bytes | dict | None = None, timeout_ms: Optional[int] = None) -> Response:
        """A request under the tenant's egress policy; a refusal is a value."""
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        req = _http.Request(method, url, [(k, str(v)) for k, v in (headers or {}).items()], body, timeout_ms)
        try:
            r = _http.fetch(req)
        except Err as e:
            return Response(ok=False, error=_describe(e.value))
        return Response(ok=True, status=r.status, body=r.body, headers=dict(r.headers), url=r.url)


class budget:
    @staticmethod
    def remaining() -> dict:
        """What is left of this invocation's limits."""
        b = _budget.remaining()
        return {"fuel": b.fuel, "wall_ms": b.wall_ms, "http_calls": b.http_calls, "memory_bytes": b.memory_bytes}


def action(fn: Callable[[Any], Any]) -> type:
    """The `WitWorld` class componentize-py exports, running `fn` on the parsed
    input; its return value is the output, an ActionError the action's error."""

    class Action(wit_world.WitWorld):
        def run(self, input: str) -> str:
            try:
                return json.dumps(fn(json.loads(input)))
            except ActionError as e:
                raise Err(wit_world.ActionError(e.code, e.message)) from None
            except Exception as e:  # noqa: BLE001 — every other error is the action's
                raise Err(wit_world.ActionError("python_error", f"{type(e).__name__}: {e}")) from None

    return Action
