// The code-editor API of Chatlayer code actions, on top of the host natives in
// `__sandbot` (installed by the runner). Loaded once, before the snapshot.
(function () {
  "use strict";
  // The natives stay until web.js (loaded last) has taken them too.
  const host = globalThis.__sandbot;

  const text = (t) => ({ type: "text", config: { textMessages: [{ text: String(t) }] } });

  // --- Native API for new code: session, say, goto.
  const session = Object.freeze({
    get(path) {
      const json = host.sessionGet(String(path));
      return json === undefined ? undefined : JSON.parse(json);
    },
    set(path, value) {
      host.sessionSet(String(path), value);
    },
    remove(path) {
      host.sessionRemove(String(path));
    },
  });
  const say = (message) => host.say(typeof message === "string" ? text(message) : message);
  const goto = (block) => host.goto(String(block));

  // --- console.* -> the invocation's logs.
  const show = (v) => {
    if (typeof v === "string") return v;
    if (v instanceof Error) return v.stack || String(v);
    try {
      const s = JSON.stringify(v);
      return s === undefined ? String(v) : s;
    } catch (_) {
      return String(v);
    }
  };
  const logger = (level) => (...parts) => host.log(level, parts.map(show).join(" "));
  const console = Object.freeze({
    log: logger("info"),
    info: logger("info"),
    debug: logger("debug"),
    warn: logger("warn"),
    error: logger("error"),
  });

  // --- fetch (WHATWG-style), performed by the host under the egress policy.
  class Headers {
    constructor(init) {
      this._list = [];
      if (init instanceof Headers) init = init._list;
      if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (init && typeof init === "object") for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(name, value) {
      this._list.push([String(name).toLowerCase(), String(value)]);
    }
    set(name, value) {
      this.delete(name);
      this.append(name, value);
    }
    delete(name) {
      const n = String(name).toLowerCase();
      this._list = this._list.filter(([k]) => k !== n);
    }
    get(name) {
      const n = String(name).toLowerCase();
      const found = this._list.filter(([k]) => k === n).map(([, v]) => v);
      return found.length ? found.join(", ") : null;
    }
    has(name) {
      return this.get(name) !== null;
    }
    forEach(fn) {
      for (const [k, v] of this._list) fn(v, k, this);
    }
    entries() {
      return this._list[Symbol.iterator]();
    }
    [Symbol.iterator]() {
      return this.entries();
    }
  }

  class Response {
    constructor(r) {
      this.status = r.status;
      this.statusText = r.statusText;
      this.ok = r.status >= 200 && r.status < 300;
      this.headers = new Headers(r.headers);
      this.url = r.url;
      this.redirected = !!r.redirected;
      this._body = r.body;
      this.bodyUsed = false;
    }
    _take() {
      if (this.bodyUsed) throw new TypeError("Body has already been consumed.");
      this.bodyUsed = true;
      return this._body;
    }
    async text() {
      return this._take();
    }
    async json() {
      return JSON.parse(this._take());
    }
    clone() {
      return new Response({ status: this.status, statusText: this.statusText, headers: this.headers._list, body: this._body, url: this.url, redirected: this.redirected });
    }
  }

  // `signal`: an aborted signal rejects at once with its reason; one from
  // `AbortSignal.timeout(ms)` also bounds the request (TimeoutError). The
  // host performs the request in one step, so an abort from elsewhere
  // takes effect when it returns.
  async function fetch(input, init) {
    init = init || {};
    const signal = init.signal;
    if (signal) signal.throwIfAborted();
    const url = String(typeof input === "object" && input && input.url ? input.url : input);
    const method = String(init.method || "GET").toUpperCase();
    const headers = new Headers(init.headers);
    let body = init.body === undefined || init.body === null ? null : init.body;
    if (body !== null && typeof body !== "string") {
      body = JSON.stringify(body);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    let timeout = init.timeout === undefined ? null : Number(init.timeout);
    const bound = signal && signal._timeoutMs !== undefined ? signal._timeoutMs : null;
    if (bound !== null) timeout = timeout === null ? bound : Math.min(timeout, bound);
    let r;
    try {
      r = host.fetch(method, url, headers._list, body, timeout);
    } catch (e) {
      if (bound !== null && /timed out|timeout/i.test(String(e.message))) {
        throw new DOMException("The operation timed out.", "TimeoutError");
      }
      throw e;
    }
    if (signal) signal.throwIfAborted();
    const requested = host.urlParse(url, null);
    r.redirected = r.url !== (requested ? requested.href : url);
    return new Response(r);
  }

  // --- ChatlayerResponseBuilder(): nothing applies until send(). The methods
  // live on one prototype, built once before the snapshot: a builder costs one
  // small object per call, not a dozen closures.
  class ResponseBuilder {
    #session = [];
    #messages = [];
    #next = null;
    addSessionVariable(namespace, data) {
      this.#session.push([String(namespace), data]);
      return this;
    }
    setSessionVariable(namespace, data) {
      return this.addSessionVariable(namespace, data);
    }
    addMessage(message) {
      this.#messages.push(text(message));
      return this;
    }
    addQuickReplies({ title, quickReplies } = {}) {
      this.#messages.push({ type: "quickReplies", config: { textMessages: [{ text: String(title ?? "") }], quickReplies: quickReplies || [] } });
      return this;
    }
    addButtonGroup({ title, buttons } = {}) {
      this.#messages.push({ type: "buttons", config: { textMessages: [{ text: String(title ?? "") }], buttons: buttons || [] } });
      return this;
    }
    addCarousel(elements) {
      this.#messages.push({ type: "carousel", config: { elements: elements || [] } });
      return this;
    }
    addMediaMessage({ type, url } = {}) {
      this.#messages.push({ type: "media", config: { media: { type: String(type), url: String(url) } } });
      return this;
    }
    addHtml(html, { withBalloon = true } = {}) {
      this.#messages.push({ type: "html", config: { html: String(html), withBalloon: !!withBalloon } });
      return this;
    }
    addIframe(url, { withBalloon = true, height } = {}) {
      const config = { url: String(url), withBalloon: !!withBalloon };
      if (height !== undefined) config.height = height;
      this.#messages.push({ type: "iframe", config });
      return this;
    }
    setNextDialogState(blockId) {
      this.#next = blockId === undefined || blockId === null ? null : String(blockId);
      return this;
    }
    send() {
      const changes = this.#session;
      const messages = this.#messages;
      for (let i = 0; i < changes.length; i++) session.set(changes[i][0], changes[i][1]);
      for (let i = 0; i < messages.length; i++) host.say(messages[i]);
      if (this.#next !== null) goto(this.#next);
      this.#session = [];
      this.#messages = [];
      this.#next = null;
      return this;
    }
  }
  function ChatlayerResponseBuilder() {
    return new ResponseBuilder();
  }

  const define = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  define("session", session);
  define("say", say);
  define("goto", goto);
  define("console", console);
  define("fetch", fetch);
  define("Headers", Headers);
  define("Response", Response);
  define("ChatlayerResponseBuilder", ChatlayerResponseBuilder);
  define("setTimeout", host.setTimeout);
  define("clearTimeout", host.clearTimeout);
})();
