// The studio page: sign in, pick a code action, edit it with completions and
// diagnostics, run it against args and a session, save versions, publish.
// Everything goes through /v1/studio (the same API tools use); changes carry
// the X-Sandbot-Studio header the server asks of cookie requests (CSRF).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { "X-Sandbot-Studio": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw Object.assign(new Error("the server cannot be reached"), { status: 0 });
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw Object.assign(new Error((data && data.error) || res.statusText), { status: res.status, data });
  return data;
}

const state = { bot: null, action: null, file: null, saved: "", detail: null, editor: null };

function status(text) {
  $("status").textContent = text;
}

function showSignIn(message) {
  $("studio").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("sign-in-error").textContent = message || "";
}

async function start() {
  let list;
  try {
    list = await api("GET", "/v1/studio/bots");
  } catch (e) {
    return showSignIn(e.status === 401 ? "" : e.message);
  }
  $("sign-in").hidden = true;
  $("studio").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `tenant ${list.tenant}`;
  renderBots(list.bots);
  if (!state.editor) {
    state.editor = SandbotEditor.create($("editor"), {
      doc: "",
      argKeys: () => {
        try { return Object.keys(JSON.parse($("args").value || "{}")); } catch { return []; }
      },
      check: async (source) => {
        if (!state.file) return [];
        try {
          return (await api("POST", "/v1/studio/check", { source })).diagnostics;
        } catch {
          return [];
        }
      },
      onChange: (text) => status(text === state.saved ? "" : "edited, not saved"),
    });
  }
}

function renderBots(bots) {
  const nav = $("bots");
  nav.replaceChildren();
  if (!bots.length) nav.append(el("p", {}, "This tenant has no bots."));
  for (const b of bots) {
    nav.append(el("h3", {}, `${b.name} (${b.id})`));
    const live = b.live ? `LIVE: version ${b.live}` : "nothing published";
    nav.append(el("div", { class: "meta" }, `${b.deployed.join(" + ")} · ${live}`));
    if (!b.actions.length) nav.append(el("div", { class: "meta" }, "no code actions"));
    for (const a of b.actions) {
      const link = el("a", { "data-bot": b.id, "data-action": a.name, onclick: () => open(b.id, a.name) }, a.name);
      if (state.bot === b.id && state.action === a.name) link.className = "current";
      nav.append(link);
      const used = a.blocks.map((bl) => bl.id).join(", ");
      nav.append(el("div", { class: "used" }, used ? `used by ${used}` : "not used by a block"));
    }
  }
}

async function open(bot, action) {
  if (state.editor.getValue() !== state.saved && state.file && !confirm("Discard the unsaved changes?")) return;
  const detail = await api("GET", `/v1/studio/bots/${encodeURIComponent(bot)}`);
  Object.assign(state, { bot, action, file: `actions/${action}`, detail });
  state.saved = detail.files[state.file] || "";
  state.editor.setValue(state.saved);
  status("");
  $("file").textContent = `${detail.name} — ${state.file}`;
  const a = detail.actions.find((x) => x.name === action);
  const args = a && a.blocks[0] ? a.blocks[0].args : {};
  $("args").value = JSON.stringify(args, null, 2);
  for (const id of ["save", "publish", "show-versions", "run-button"]) $(id).disabled = false;
  for (const link of document.querySelectorAll("#bots a")) {
    link.className = link.dataset.bot === bot && link.dataset.action === action ? "current" : "";
  }
  $("problems").textContent = "";
  $("versions").hidden = true;
  loadFailures();
  const select = $("conversation");
  select.replaceChildren(el("option", { value: "" }, "(the JSON below)"));
  try {
    const convs = await api("GET", `/v1/studio/bots/${encodeURIComponent(bot)}/conversations`);
    for (const c of convs.data) {
      const opt = el("option", { value: c.conversationId }, `${c.conversationId} (${new Date(c.updatedAt).toLocaleString()})`);
      opt.dataset.session = JSON.stringify(c.session, null, 2);
      select.append(opt);
    }
  } catch (e) {
    status(e.message);
  }
}

$("conversation").addEventListener("change", () => {
  const opt = $("conversation").selectedOptions[0];
  if (opt && opt.dataset.session) $("session").value = opt.dataset.session;
});

async function save() {
  $("problems").textContent = "";
  const text = state.editor.getValue();
  try {
    const r = await api("POST", `/v1/studio/bots/${encodeURIComponent(state.bot)}/versions`, {
      files: { [state.file]: text },
      message: $("message").value,
    });
    state.saved = text;
    $("message").value = "";
    status(`saved as version ${r.version.number} (DRAFT)`);
  } catch (e) {
    status("not saved");
    const problems = e.data && e.data.problems;
    $("problems").textContent = problems
      ? "Refused, nothing was changed:\n" + problems.map((p) => `${p.file}: ${p.path ? p.path + ": " : ""}${p.message}`).join("\n")
      : e.message;
  }
}

async function publish() {
  if (state.editor.getValue() !== state.saved) return status("save first: publishing takes the saved DRAFT");
  try {
    const r = await api("POST", `/v1/studio/bots/${encodeURIComponent(state.bot)}/publish`, {
      message: $("message").value,
    });
    status(`version ${r.version.number} is LIVE`);
    renderBots((await api("GET", "/v1/studio/bots")).bots);
  } catch (e) {
    $("problems").textContent = e.message;
  }
}

async function showVersions() {
  const box = $("versions");
  if (!box.hidden) return (box.hidden = true);
  const bot = encodeURIComponent(state.bot);
  const list = await api("GET", `/v1/studio/bots/${bot}/versions`);
  const table = el("table");
  const diffOut = el("pre", { id: "version-diff" });
  for (const v of list.data) {
    const diff = el("button", { class: "quiet", type: "button", onclick: async () => {
      const d = await api("GET", `/v1/studio/bots/${bot}/versions/${v.number}/diff`);
      diffOut.textContent = d.files.length ? d.files.map((f) => f.diff).join("\n") : "no change to the text files";
    } }, "diff");
    const restore = el("button", { class: "quiet", type: "button", onclick: async () => {
      try {
        const r = await api("POST", `/v1/studio/bots/${bot}/versions/${v.number}/restore`);
        status(`restored as version ${r.version.number}`);
        await open(state.bot, state.action);
      } catch (e) {
        $("problems").textContent = e.message;
      }
    } }, "restore");
    table.append(el("tr", {},
      el("td", {}, `v${v.number}${list.live === v.number ? " · LIVE" : ""}`),
      el("td", {}, v.author),
      el("td", {}, new Date(v.atMs).toLocaleString()),
      el("td", {}, v.message || ""),
      el("td", {}, diff, " ", restore)));
  }
  box.replaceChildren(el("h3", {}, "Versions"), table, diffOut);
  box.hidden = false;
}

function bar(label, used, limit, unit, scale = 1) {
  const pct = limit ? Math.min(100, (used / limit) * 100) : 0;
  const fill = el("div", { class: pct > 80 ? "fill high" : "fill", style: `width:${pct.toFixed(1)}%` });
  const fmt = (n) => (n / scale).toLocaleString(undefined, { maximumFractionDigits: 1 });
  return el("div", { class: "bar", "data-bar": label },
    `${label}: ${fmt(used)} of ${fmt(limit)} ${unit} (${pct.toFixed(1)}%)`,
    el("div", { class: "track" }, fill));
}

function renderMessage(m) {
  const c = m.config || {};
  const box = el("div", { class: "msg" });
  const choices = (list, key = "title") => el("div", { class: "choices" }, ...(list || []).map((b) => el("span", { class: "choice" }, b[key] || "")));
  switch (m.type) {
    case "text":
      box.append((c.textMessages || []).map((t) => t.text).join("\n"));
      break;
    case "button":
      box.append(c.text || "", choices(c.buttons));
      break;
    case "carousel":
      for (const card of c.elements || []) box.append(el("div", { class: "card" }, card.title || "", card.subtitle ? `\n${card.subtitle}` : "", choices(card.buttons)));
      break;
    case "media":
      box.append(`[${c.type || "media"}] ${c.url || ""}`);
      break;
    case "html":
      box.append(new DOMParser().parseFromString(c.html || c.content || "", "text/html").body.textContent);
      break;
    default:
      box.append(c.text || c.title || JSON.stringify(m));
  }
  if (c.quickReplies) box.append(choices(c.quickReplies));
  return box;
}

async function run() {
  let args, session;
  try {
    args = JSON.parse($("args").value || "{}");
    session = JSON.parse($("session").value || "{}");
  } catch (e) {
    return status(`args and session must be JSON: ${e.message}`);
  }
  const body = { action: state.action, source: state.editor.getValue(), args };
  const conversation = $("conversation").value;
  if (conversation && $("session").value === $("conversation").selectedOptions[0].dataset.session) body.conversation = conversation;
  else body.session = session;
  status("running…");
  let r;
  try {
    r = await api("POST", `/v1/studio/bots/${encodeURIComponent(state.bot)}/run`, body);
  } catch (e) {
    return status(e.message);
  }
  status("");
  showResult(r);
}

// Recent production failures of the open action, each replayable against
// what it recorded (the failing code, or the editor's).
async function loadFailures() {
  const box = $("failures");
  box.replaceChildren();
  let list;
  try {
    list = await api("GET", `/v1/studio/bots/${encodeURIComponent(state.bot)}/failures`);
  } catch (e) {
    return box.append(e.message);
  }
  const mine = list.data.filter((f) => f.action === state.action);
  if (!mine.length) return box.append(el("em", {}, "none in the last 24 hours"));
  for (const f of mine) {
    const replay = (useEditor) => async () => {
      const path = `/v1/studio/bots/${encodeURIComponent(state.bot)}/failures/${f.id}`;
      const record = await api("GET", path);
      $("args").value = JSON.stringify(record.args, null, 2);
      $("session").value = JSON.stringify(record.session, null, 2);
      $("conversation").value = "";
      status("replaying…");
      try {
        showResult(await api("POST", `${path}/replay`, useEditor ? { source: state.editor.getValue() } : {}));
        status(useEditor ? "replayed with the editor's code" : "replayed with the code that failed");
      } catch (e) {
        status(e.message);
      }
    };
    box.append(el("div", { class: "failure" },
      el("div", {}, `${new Date(f.atMs).toLocaleString()} · ${f.version} · `, el("span", { class: "failed" }, f.error.kind)),
      el("div", { class: "meta" }, f.error.message),
      el("button", { class: "quiet", type: "button", onclick: replay(false) }, "replay"), " ",
      el("button", { class: "quiet", type: "button", onclick: replay(true) }, "replay with this code")));
  }
}

function showResult(r) {
  $("result").hidden = false;
  const outcome = $("outcome");
  if (r.status === "ok") {
    outcome.replaceChildren(el("span", { class: "ok" }, "ok"), ` · returned ${JSON.stringify(r.output)}`);
  } else {
    outcome.replaceChildren(el("span", { class: "failed" }, r.error.kind), ` ${r.error.message}`);
    if (r.error.line) state.editor.markFailure(r.error.line, `${r.error.kind}: ${r.error.message}`);
  }
  $("bars").replaceChildren(
    bar("fuel", r.stats.fuel, r.limits.fuel, "M", 1e6),
    bar("memory", r.stats.memoryBytes, r.limits.memoryBytes, "MiB", 1 << 20),
    bar("wall time", r.stats.wallUs, r.limits.timeoutMs * 1000, "ms", 1000));
  $("messages").replaceChildren(...(r.messages.length ? r.messages.map(renderMessage) : [el("em", {}, "none")]));
  $("diff").replaceChildren(...r.sessionDiff.map((d) => el("tr", {},
    el("td", {}, d.path), el("td", {}, JSON.stringify(d.before)), el("td", {}, "→ " + JSON.stringify(d.after)))));
  $("next").textContent = r.next || "(the block's own next)";
  $("console").textContent = r.console.map((l) => `[${l.level}] ${l.text}`).join("\n");
  $("fetches").replaceChildren(...r.fetches.map((f) => el("tr", {},
    el("td", {}, f.method), el("td", {}, f.url),
    el("td", {}, f.status != null ? String(f.status) : f.error || ""), el("td", {}, `${f.ms} ms`))));
  $("limits").textContent = `egress: ${r.limits.egress.length ? r.limits.egress.join(", ") : "nothing allowed"} · at most ${r.limits.maxHttpCalls} HTTP calls · ${r.limits.timeoutMs} ms`;
}

$("sign-in-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("POST", "/v1/studio/session", { token: $("token").value });
    $("token").value = "";
    await start();
  } catch (e) {
    showSignIn(e.status === 401 ? "That token belongs to no tenant." : e.message);
  }
});
$("sign-out").addEventListener("click", async () => {
  await api("DELETE", "/v1/studio/session");
  location.reload();
});
$("save").addEventListener("click", save);
$("publish").addEventListener("click", publish);
$("show-versions").addEventListener("click", showVersions);
$("run-button").addEventListener("click", run);
$("refresh-failures").addEventListener("click", () => state.bot && loadFailures());
document.addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "s" && state.file) {
    ev.preventDefault();
    save();
  }
});
start();
