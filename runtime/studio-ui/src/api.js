// The code-action API as the editor completes it: what Sandbot's JavaScript
// runner defines (guest-sdk/js-runner/js/prelude.js) and Chatlayer's
// code-editor API. Each entry: label, what it is, and its parameters.

export const globals = [
  { label: "args", type: "variable", detail: "the block's arguments (object)" },
  { label: "session", type: "variable", detail: "the conversation's session: get(path), set(path, value), remove(path)" },
  { label: "say", type: "function", detail: "say(message): a text or a Chatlayer message object" },
  { label: "goto", type: "function", detail: "goto(blockId): the block to continue with" },
  { label: "console", type: "variable", detail: "console.log/info/warn/error: lines in the run panel" },
  { label: "fetch", type: "function", detail: "fetch(url, {method, headers, body, timeout, signal}) → Promise<Response> (egress policy applies)" },
  { label: "ChatlayerResponseBuilder", type: "function", detail: "ChatlayerResponseBuilder() → builder: add messages and session data, then send()" },
  { label: "_", type: "variable", detail: "lodash" },
  { label: "setTimeout", type: "function", detail: "setTimeout(fn, ms)" },
  { label: "clearTimeout", type: "function", detail: "clearTimeout(id)" },
  { label: "Headers", type: "class", detail: "new Headers(init)" },
  { label: "URL", type: "class", detail: "new URL(url, base)" },
  { label: "URLSearchParams", type: "class", detail: "new URLSearchParams(init)" },
  { label: "AbortController", type: "class", detail: "new AbortController()" },
  { label: "TextEncoder", type: "class", detail: "new TextEncoder()" },
  { label: "TextDecoder", type: "class", detail: "new TextDecoder()" },
  { label: "btoa", type: "function", detail: "btoa(binaryString) → base64" },
  { label: "atob", type: "function", detail: "atob(base64) → binary string" },
  { label: "structuredClone", type: "function", detail: "structuredClone(value)" },
  { label: "queueMicrotask", type: "function", detail: "queueMicrotask(fn)" },
  { label: "crypto", type: "variable", detail: "crypto.randomUUID(), getRandomValues(array), subtle.digest/sign" },
];

export const builder = [
  { label: "addMessage", detail: "(text)", info: "A text message." },
  { label: "addQuickReplies", detail: "({ title, quickReplies: [{ title, payload }] })", info: "A question with quick replies." },
  { label: "addButtonGroup", detail: "({ title, buttons: [{ title, type, payload | url }] })", info: "A text with buttons." },
  { label: "addCarousel", detail: "([{ title, subtitle, imageUrl, buttons }])", info: "A carousel of cards." },
  { label: "addMediaMessage", detail: "({ type: 'image' | 'video' | 'audio' | 'file', url })", info: "An image, video, audio or file." },
  { label: "addHtml", detail: "(html, { withBalloon })", info: "Sanitized HTML (text fallback on plain-text channels)." },
  { label: "addIframe", detail: "(url, { withBalloon, height })", info: "A sandboxed iframe." },
  { label: "addSessionVariable", detail: "(name, value)", info: "Sets a session variable when sent." },
  { label: "setSessionVariable", detail: "(name, value)", info: "Same as addSessionVariable." },
  { label: "setNextDialogState", detail: "(blockId)", info: "The block to continue with." },
  { label: "send", detail: "()", info: "Sends the messages and session changes." },
];

export const session = [
  { label: "get", detail: "(path)", info: "A session value by path (`order.size`)." },
  { label: "set", detail: "(path, value)", info: "Writes a session value (applied when the action succeeds)." },
  { label: "remove", detail: "(path)", info: "Removes a session value." },
];

export const consoleMethods = ["log", "info", "warn", "error", "debug"].map((label) => ({
  label,
  detail: "(...values)",
  info: "A line in the run panel's console.",
}));

export const response = [
  { label: "json", detail: "() → Promise<any>", info: "The body parsed as JSON." },
  { label: "text", detail: "() → Promise<string>", info: "The body as text." },
  { label: "status", detail: "number", info: "The HTTP status." },
  { label: "statusText", detail: "string", info: "The status text." },
  { label: "ok", detail: "boolean", info: "status is 200–299." },
  { label: "headers", detail: "Headers", info: "get(name), has(name), forEach(fn)." },
  { label: "url", detail: "string", info: "The final URL (after redirects)." },
  { label: "redirected", detail: "boolean", info: "Whether a redirect was followed." },
  { label: "clone", detail: "() → Response", info: "A copy whose body can be read again." },
];

export const lodash = (
  "chunk compact concat difference drop dropRight filter find findIndex findLast first flatten flattenDeep " +
  "fromPairs head indexOf initial intersection join last nth pull remove reverse slice sortedUniq tail take " +
  "takeRight union uniq uniqBy unzip without xor zip zipObject countBy each every flatMap forEach groupBy " +
  "includes keyBy map orderBy partition reduce reject sample shuffle size some sortBy debounce throttle " +
  "clone cloneDeep isArray isEmpty isEqual isNil isNumber isObject isPlainObject isString toNumber toString " +
  "add ceil floor max maxBy mean min minBy round sum sumBy clamp inRange random assign defaults get has " +
  "invert keys mapKeys mapValues merge omit pick set toPairs unset values camelCase capitalize deburr " +
  "endsWith escape kebabCase lowerCase pad padEnd padStart repeat replace snakeCase split startCase " +
  "startsWith template toLower toUpper trim trimEnd trimStart truncate upperFirst words identity noop range times uniqueId"
)
  .split(" ")
  .map((label) => ({ label, detail: "lodash", info: `_.${label}` }));
