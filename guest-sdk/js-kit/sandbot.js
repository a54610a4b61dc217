// The Sandbot kit for JavaScript plugins (componentize-js): the
// sandbot:action world's imports as plain JavaScript values, and `action()`
// to write `run` as a function of the parsed input. Types: sandbot.d.ts.
import * as wsession from "sandbot:action/session@0.1.0";
import * as wconversation from "sandbot:action/conversation@0.1.0";
import * as whttp from "sandbot:action/http@0.1.0";
import * as wbudget from "sandbot:action/budget@0.1.0";

/** Your own failure: the flow goes to *Error occurred*, nothing you wrote applies. */
export class ActionError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// A host call's error value (componentize-js throws it with a payload).
const payload = (e) => (e && e.payload !== undefined ? e.payload : e);

export const session = {
  /** The value at `path` (`user.address.city`, `items[0]`), or undefined. */
  get(path) {
    const json = wsession.get(String(path));
    return json === undefined ? undefined : JSON.parse(json);
  },
  /** Sets `path` to `value` (applied when the action succeeds). */
  set(path, value) {
    try {
      wsession.set(String(path), JSON.stringify(value));
    } catch (e) {
      throw new ActionError("session_write", String(payload(e)));
    }
  },
  remove(path) {
    try {
      wsession.remove(String(path));
    } catch (e) {
      throw new ActionError("session_write", String(payload(e)));
    }
  },
};

export const conversation = {
  /** Says a text, or a Chatlayer message object. */
  say(message) {
    const m = typeof message === "string" ? { type: "text", config: { textMessages: [{ text: message }] } } : message;
    try {
      wconversation.say(JSON.stringify(m));
    } catch (e) {
      throw new ActionError("invalid_message", String(payload(e)));
    }
  },
  /** The block to continue with (the last call wins). */
  goto(block) {
    wconversation.goto(String(block));
  },
  log(level, text) {
    wconversation.log(level, String(text));
  },
  info(text) {
    wconversation.log("info", String(text));
  },
  warn(text) {
    wconversation.log("warn", String(text));
  },
};

const describe = (e) => {
  switch (e.tag) {
    case "denied": return `egress denied: ${e.val}`;
    case "timeout": return "request timed out";
    case "too-large": return `too large: ${e.val}`;
    case "invalid-request": return `invalid request: ${e.val}`;
    default: return `transport error: ${e.val}`;
  }
};

export const http = {
  /** A request under the tenant's egress policy. Resolves to
   * `{ok: true, status, statusText, headers, url, text(), json()}`, or
   * `{ok: false, error}` when it was refused or failed (`egress denied: …`). */
  fetch(url, { method = "GET", headers = {}, body, timeoutMs } = {}) {
    const bytes = body === undefined ? undefined
      : new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
    try {
      const r = whttp.fetch({
        method,
        url: String(url),
        headers: Object.entries(headers).map(([k, v]) => [k, String(v)]),
        body: bytes,
        timeoutMs,
      });
      const text = new TextDecoder().decode(r.body);
      return {
        ok: true, status: r.status, statusText: r.statusText, headers: Object.fromEntries(r.headers), url: r.url,
        text: () => text, json: () => JSON.parse(text),
      };
    } catch (e) {
      return { ok: false, status: 0, error: describe(payload(e)) };
    }
  },
};

export const budget = {
  /** What is left of this invocation's limits. */
  remaining() {
    const b = wbudget.remaining();
    return { fuel: Number(b.fuel), wallMs: Number(b.wallMs), httpCalls: b.httpCalls, memoryBytes: Number(b.memoryBytes) };
  },
};

/** `export const run = action((input) => output)`: the input parsed, the
 * output stringified, an ActionError (or any error) as the action's error. */
export function action(fn) {
  return (input) => {
    try {
      const out = fn(JSON.parse(input));
      return JSON.stringify(out === undefined ? null : out);
    } catch (e) {
      if (e instanceof ActionError) throw { code: e.code, message: e.message };
      throw { code: "js_error", message: String((e && e.message) || e) };
    }
  };
}
