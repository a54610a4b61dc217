// Web-platform globals code actions expect, with the WHATWG/W3C semantics of
// the common cases: btoa/atob, URL and URLSearchParams, TextEncoder and
// TextDecoder, structuredClone, queueMicrotask, AbortController/AbortSignal,
// crypto (getRandomValues, randomUUID, subtle.digest, HMAC sign/verify),
// DOMException. Bytes cross to the natives in `__sandbot` as "binary strings"
// (one code unit per byte). Loaded once, last (after the prelude, the
// warm-up and lodash), before the snapshot: evaluating it takes ~46M fuel,
// far too much to pay per action on first use. It removes the natives from
// the global scope.
(function () {
  "use strict";
  const host = globalThis.__sandbot;
  delete globalThis.__sandbot;
  const define = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });

  // --- DOMException (the names code actions meet).
  const CODES = { IndexSizeError: 1, InvalidCharacterError: 5, NotSupportedError: 9, InvalidAccessError: 15,
    SyntaxError: 12, QuotaExceededError: 22, TimeoutError: 23, DataCloneError: 25, AbortError: 20 };
  class DOMException extends Error {
    constructor(message = "", name = "Error") {
      super(String(message));
      Object.defineProperty(this, "name", { value: String(name), configurable: true, writable: true });
    }
    get code() {
      return CODES[this.name] || 0;
    }
  }

  // --- Bytes.
  const toBytes = (data, what) => {
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    throw new TypeError(`${what}: expected an ArrayBuffer or a typed array`);
  };
  const toBinary = (bytes) => {
    let s = "";
    for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    return s;
  };
  const fromBinary = (s) => {
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  };

  // --- btoa / atob (forgiving base64).
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function btoa(data) {
    const s = String(data);
    let out = "";
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) {
        throw new DOMException("The string to be encoded contains characters outside of the Latin1 range.", "InvalidCharacterError");
      }
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < s.length ? B64[(n >> 6) & 63] : "=") + (i + 2 < s.length ? B64[n & 63] : "=");
    }
    return out;
  }
  function atob(data) {
    let s = String(data).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
      throw new DOMException("The string to be decoded is not correctly encoded.", "InvalidCharacterError");
    }
    let out = "", bits = 0, acc = 0;
    for (let i = 0; i < s.length; i++) {
      acc = (acc << 6) | B64.indexOf(s[i]);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((acc >> bits) & 255);
      }
    }
    return out;
  }

  // --- TextEncoder / TextDecoder (UTF-8, as the platform's).
  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return fromBinary(host.utf8Encode(String(input)));
    }
    encodeInto(input, dest) {
      const bytes = this.encode(input);
      let read = 0, written = 0;
      for (const ch of String(input)) {
        const n = this.encode(ch).length;
        if (written + n > dest.length) break;
        dest.set(bytes.subarray(written, written + n), written);
        written += n;
        read += ch.length;
      }
      return { read, written };
    }
  }
  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      const l = String(label).trim().toLowerCase();
      if (l !== "utf-8" && l !== "utf8" && l !== "unicode-1-1-utf-8") {
        throw new RangeError(`The encoding label provided ('${label}') is not supported: only utf-8`);
      }
      this.#fatal = !!(options && options.fatal);
      this.#ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    decode(input) {
      if (input === undefined) return "";
      let bytes = toBytes(input, "TextDecoder.decode");
      if (!this.#ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
      const out = host.utf8Decode(toBinary(bytes), this.#fatal);
      if (out === null) throw new TypeError("The encoded data was not valid for encoding utf-8");
      return out;
    }
  }

  // --- URLSearchParams (application/x-www-form-urlencoded).
  const formEncode = (s) =>
    fromBinary(host.utf8Encode(String(s))).reduce((out, b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9*\-._]/.test(c)) return out + c;
      if (b === 0x20) return out + "+";
      return out + "%" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
    }, "");
  const formDecode = (s) => {
    const bytes = [];
    const t = s.replace(/\+/g, " ");
    for (let i = 0; i < t.length; i++) {
      if (t[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(t.slice(i + 1, i + 3))) {
        bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        const enc = host.utf8Encode(t[i] + (/[\uD800-\uDBFF]/.test(t[i]) && t[i + 1] ? t[++i] : ""));
        for (let j = 0; j < enc.length; j++) bytes.push(enc.charCodeAt(j));
      }
    }
    return host.utf8Decode(toBinary(Uint8Array.from(bytes)), false);
  };
  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = "") {
      if (init instanceof URLSearchParams) this.#list = init.#list.map(([k, v]) => [k, v]);
      else if (init && typeof init === "object") {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const p = Array.from(pair);
            if (p.length !== 2) throw new TypeError("Each query pair must be a [name, value] pair");
            this.#list.push([String(p[0]), String(p[1])]);
          }
        } else for (const k of Object.keys(init)) this.#list.push([k, String(init[k])]);
      } else this.#parse(String(init));
    }
    #parse(s) {
      this.#list = [];
      for (const part of s.replace(/^\?/, "").split("&")) {
        if (!part) continue;
        const eq = part.indexOf("=");
        this.#list.push(eq < 0 ? [formDecode(part), ""] : [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))]);
      }
    }
    static _bind(params, url, query) {
      params.#url = url;
      params.#parse(query);
    }
    static _reparse(params, query) {
      params.#parse(query);
    }
    #update() {
      if (this.#url) this.#url._setQuery(this.toString());
    }
    get size() {
      return this.#list.length;
    }
    append(name, value) {
      this.#list.push([String(name), String(value)]);
      this.#update();
    }
    delete(name, value) {
      const n = String(name);
      this.#list = this.#list.filter(([k, v]) => k !== n || (value !== undefined && v !== String(value)));
      this.#update();
    }
    get(name) {
      const found = this.#list.find(([k]) => k === String(name));
      return found ? found[1] : null;
    }
    getAll(name) {
      return this.#list.filter(([k]) => k === String(name)).map(([, v]) => v);
    }
    has(name, value) {
      return this.#list.some(([k, v]) => k === String(name) && (value === undefined || v === String(value)));
    }
    set(name, value) {
      const n = String(name);
      const i = this.#list.findIndex(([k]) => k === n);
      if (i < 0) this.#list.push([n, String(value)]);
      else {
        this.#list[i] = [n, String(value)];
        this.#list = this.#list.filter(([k], j) => k !== n || j === i);
      }
      this.#update();
    }
    sort() {
      this.#list = this.#list.map((p, i) => [p, i]).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map(([p]) => p);
      this.#update();
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.#list) fn.call(thisArg, v, k, this);
    }
    keys() {
      return this.#list.map(([k]) => k)[Symbol.iterator]();
    }
    values() {
      return this.#list.map(([, v]) => v)[Symbol.iterator]();
    }
    entries() {
      return this.#list.map(([k, v]) => [k, v])[Symbol.iterator]();
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toString() {
      return this.#list.map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&");
    }
  }

  // --- URL (parsed by the WHATWG-conformant `url` crate).
  const parse = (input, base) => {
    const parts = host.urlParse(String(input), base === undefined ? null : String(base));
    if (parts === null) throw new TypeError(`Invalid URL: ${input}`);
    return parts;
  };
  class URL {
    #p;
    #params;
    constructor(url, base) {
      this.#p = parse(url, base);
      this.#params = new URLSearchParams();
      URLSearchParams._bind(this.#params, this, this.#p.search);
    }
    static canParse(url, base) {
      return host.urlParse(String(url), base === undefined ? null : String(base)) !== null;
    }
    static parse(url, base) {
      try {
        return new URL(url, base);
      } catch (_) {
        return null;
      }
    }
    #set(field, value) {
      const parts = host.urlSet(this.#p.href, field, String(value));
      if (parts !== null) this.#p = parts;
      else if (field === "href") throw new TypeError(`Invalid URL: ${value}`);
      if (field === "search" || field === "href") URLSearchParams._reparse(this.#params, this.#p.search);
    }
    _setQuery(query) {
      const parts = host.urlSet(this.#p.href, "search", query);
      if (parts !== null) this.#p = parts;
    }
    get href() { return this.#p.href; }
    set href(v) { this.#set("href", v); }
    get origin() { return this.#p.origin; }
    get protocol() { return this.#p.protocol; }
    set protocol(v) { this.#set("protocol", v); }
    get username() { return this.#p.username; }
    set username(v) { this.#set("username", v); }
    get password() { return this.#p.password; }
    set password(v) { this.#set("password", v); }
    get host() { return this.#p.host; }
    set host(v) { this.#set("host", v); }
    get hostname() { return this.#p.hostname; }
    set hostname(v) { this.#set("hostname", v); }
    get port() { return this.#p.port; }
    set port(v) { this.#set("port", v); }
    get pathname() { return this.#p.pathname; }
    set pathname(v) { this.#set("pathname", v); }
    get search() { return this.#p.search; }
    set search(v) { this.#set("search", v); }
    get searchParams() { return this.#params; }
    get hash() { return this.#p.hash; }
    set hash(v) { this.#set("hash", v); }
    toString() { return this.#p.href; }
    toJSON() { return this.#p.href; }
  }

  // --- structuredClone (the HTML structured clone of plain data).
  function structuredClone(value) {
    const seen = new Map();
    const clone = (v) => {
      if (v === null || (typeof v !== "object" && typeof v !== "function" && typeof v !== "symbol")) return v;
      if (typeof v === "function" || typeof v === "symbol") {
        throw new DOMException(`${typeof v === "function" ? "A function" : "A symbol"} could not be cloned.`, "DataCloneError");
      }
      if (seen.has(v)) return seen.get(v);
      let out;
      if (Array.isArray(v)) {
        out = new Array(v.length);
        seen.set(v, out);
        for (const k of Object.keys(v)) out[k] = clone(v[k]);
        return out;
      }
      if (v instanceof Date) out = new Date(v.getTime());
      else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
      else if (v instanceof Boolean || v instanceof Number || v instanceof String) out = Object(v.valueOf());
      else if (v instanceof ArrayBuffer) out = v.slice(0);
      else if (ArrayBuffer.isView(v)) {
        const buffer = clone(v.buffer);
        out = v instanceof DataView ? new DataView(buffer, v.byteOffset, v.byteLength) : new v.constructor(buffer, v.byteOffset, v.length);
      } else if (v instanceof Map) {
        out = new Map();
        seen.set(v, out);
        for (const [k, x] of v) out.set(clone(k), clone(x));
        return out;
      } else if (v instanceof Set) {
        out = new Set();
        seen.set(v, out);
        for (const x of v) out.add(clone(x));
        return out;
      } else if (v instanceof Error) {
        const E = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError }[v.name] || Error;
        out = new E(v.message);
        if (v.stack !== undefined) out.stack = v.stack;
      } else if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet) {
        throw new DOMException(`${Object.prototype.toString.call(v)} could not be cloned.`, "DataCloneError");
      } else {
        out = {};
        seen.set(v, out);
        for (const k of Object.keys(v)) out[k] = clone(v[k]);
        return out;
      }
      seen.set(v, out);
      return out;
    };
    return clone(value);
  }

  // --- queueMicrotask.
  function queueMicrotask(callback) {
    if (typeof callback !== "function") throw new TypeError("queueMicrotask needs a function");
    Promise.resolve().then(() => callback());
  }

  // --- EventTarget, AbortController, AbortSignal.
  class EventTarget {
    #listeners = new Map();
    addEventListener(type, listener, options) {
      if (typeof listener !== "function" && !(listener && typeof listener.handleEvent === "function")) return;
      const list = this.#listeners.get(type) || [];
      if (!list.some((l) => l.listener === listener)) list.push({ listener, once: !!(options && options.once) });
      this.#listeners.set(type, list);
    }
    removeEventListener(type, listener) {
      const list = this.#listeners.get(type);
      if (list) this.#listeners.set(type, list.filter((l) => l.listener !== listener));
    }
    dispatchEvent(event) {
      const handler = this["on" + event.type];
      if (typeof handler === "function") handler.call(this, event);
      for (const l of (this.#listeners.get(event.type) || []).slice()) {
        if (l.once) this.removeEventListener(event.type, l.listener);
        if (typeof l.listener === "function") l.listener.call(this, event);
        else l.listener.handleEvent(event);
      }
      return true;
    }
  }
  class Event {
    constructor(type) {
      this.type = String(type);
    }
  }
  class AbortSignal extends EventTarget {
    #aborted = false;
    #reason = undefined;
    constructor(key) {
      super();
      if (key !== AbortSignal) throw new TypeError("Illegal constructor");
      this.onabort = null;
    }
    get aborted() {
      return this.#aborted;
    }
    get reason() {
      return this.#reason;
    }
    throwIfAborted() {
      if (this.#aborted) throw this.#reason;
    }
    static _abort(signal, reason) {
      if (signal.#aborted) return;
      signal.#aborted = true;
      signal.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      signal.dispatchEvent(new Event("abort"));
    }
    static abort(reason) {
      const s = new AbortSignal(AbortSignal);
      AbortSignal._abort(s, reason);
      return s;
    }
    static timeout(ms) {
      const s = new AbortSignal(AbortSignal);
      s._timeoutMs = Number(ms);
      setTimeout(() => AbortSignal._abort(s, new DOMException("The operation timed out.", "TimeoutError")), Number(ms));
      return s;
    }
    static any(signals) {
      const s = new AbortSignal(AbortSignal);
      for (const x of signals) {
        if (x.aborted) {
          AbortSignal._abort(s, x.reason);
          break;
        }
        x.addEventListener("abort", () => AbortSignal._abort(s, x.reason), { once: true });
      }
      return s;
    }
  }
  class AbortController {
    #signal = new AbortSignal(AbortSignal);
    get signal() {
      return this.#signal;
    }
    abort(reason) {
      AbortSignal._abort(this.#signal, reason);
    }
  }

  // --- crypto.
  const HASHES = { "SHA-1": "SHA-1", "SHA-256": "SHA-256", "SHA-384": "SHA-384", "SHA-512": "SHA-512" };
  const hashName = (alg) => {
    const name = String(typeof alg === "object" && alg ? alg.name : alg).toUpperCase();
    if (!HASHES[name]) throw new DOMException(`Algorithm ${name} is not supported (SHA-1, SHA-256, SHA-384, SHA-512)`, "NotSupportedError");
    return name;
  };
  const buffer = (binary) => fromBinary(binary).buffer;
  class CryptoKey {
    constructor(key, hash, extractable, usages) {
      Object.defineProperty(this, "_key", { value: key });
      this.type = "secret";
      this.extractable = !!extractable;
      this.algorithm = { name: "HMAC", hash: { name: hash }, length: key.length * 8 };
      this.usages = Array.from(usages || []);
    }
  }
  const hmacKey = (alg, key, usage) => {
    const name = String(typeof alg === "object" && alg ? alg.name : alg).toUpperCase();
    if (name !== "HMAC") throw new DOMException(`Algorithm ${name} is not supported (HMAC)`, "NotSupportedError");
    if (!(key instanceof CryptoKey)) throw new TypeError("key is not a CryptoKey");
    if (!key.usages.includes(usage)) throw new DOMException(`key usages do not permit ${usage}`, "InvalidAccessError");
    return key;
  };
  const subtle = Object.freeze({
    async digest(alg, data) {
      return buffer(host.digest(hashName(alg), toBinary(toBytes(data, "digest"))));
    },
    async importKey(format, keyData, alg, extractable, usages) {
      if (format !== "raw") throw new DOMException(`format ${format} is not supported (raw)`, "NotSupportedError");
      const name = String(typeof alg === "object" && alg ? alg.name : alg).toUpperCase();
      if (name !== "HMAC") throw new DOMException(`Algorithm ${name} is not supported (HMAC)`, "NotSupportedError");
      const key = toBinary(toBytes(keyData, "importKey"));
      return new CryptoKey(key, hashName(alg.hash), extractable, usages);
    },
    async exportKey(format, key) {
      if (format !== "raw") throw new DOMException(`format ${format} is not supported (raw)`, "NotSupportedError");
      if (!key.extractable) throw new DOMException("key is not extractable", "InvalidAccessError");
      return buffer(key._key);
    },
    async sign(alg, key, data) {
      const k = hmacKey(alg, key, "sign");
      return buffer(host.hmac(k.algorithm.hash.name, k._key, toBinary(toBytes(data, "sign"))));
    },
    async verify(alg, key, signature, data) {
      const k = hmacKey(alg, key, "verify");
      return host.hmacVerify(k.algorithm.hash.name, k._key, toBinary(toBytes(data, "verify")), toBinary(toBytes(signature, "verify")));
    },
  });
  const crypto = Object.freeze({
    subtle,
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof DataView || array instanceof Float32Array || array instanceof Float64Array) {
        throw new DOMException("getRandomValues needs an integer typed array", "TypeMismatchError");
      }
      if (array.byteLength > 65536) {
        throw new DOMException(`getRandomValues: ${array.byteLength} bytes asked, at most 65536`, "QuotaExceededError");
      }
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(fromBinary(host.randomBytes(array.byteLength)));
      return array;
    },
    randomUUID() {
      const b = fromBinary(host.randomBytes(16));
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = Array.from(b, (x) => (x < 16 ? "0" : "") + x.toString(16)).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  });

  define("DOMException", DOMException);
  define("btoa", btoa);
  define("atob", atob);
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);
  define("URLSearchParams", URLSearchParams);
  define("URL", URL);
  define("structuredClone", structuredClone);
  define("queueMicrotask", queueMicrotask);
  define("EventTarget", EventTarget);
  define("Event", Event);
  define("AbortSignal", AbortSignal);
  define("AbortController", AbortController);
  define("CryptoKey", CryptoKey);
  define("crypto", crypto);
})();
