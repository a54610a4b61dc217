// The web chat in a real browser: headless Chromium (Debian's) driven by
// playwright-core against `sandbot serve` (started by the caller, default
// http://127.0.0.1:18080, serving the example bots without a config).
//   SANDBOT_URL=http://127.0.0.1:18080 node --test tests/web/
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { args, executablePath, serve } from "./serve.mjs";

const base = process.env.SANDBOT_URL || "http://127.0.0.1:18080";

test("a conversation with the meetups bot, clicked through", async () => {
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage();
    // The emulator's data needs the tenant's token (the panel's field keeps it per tab).
    await page.addInitScript(() => sessionStorage.setItem("sandbot-web-meetups@DRAFT-tenant", "demo-token"));
    // The emulator is the DRAFT's.
    await page.goto(`${base}/chat/meetups?version=DRAFT`);
    // The introduction: text and three buttons (postback, link, phone).
    await page.getByText("Hi! I find tech meetups.").waitFor();
    assert.equal(await page.locator("a.choice", { hasText: "Website" }).getAttribute("href"), "https://meetups.example.com");
    assert.equal(await page.locator("a.choice", { hasText: "Call us" }).getAttribute("href"), "tel:+32 9 123 45 67");
    // The emulator shows the current block.
    await page.locator("#emu-block", { hasText: "Introduction" }).waitFor();

    await page.getByRole("button", { name: "Find a meetup" }).click();
    await page.getByText("Which month? June or July?").waitFor();
    await page.locator("#emu-block", { hasText: "waiting for input" }).waitFor();

    await page.getByLabel("message").fill("june");
    await page.getByRole("button", { name: "Send" }).click();
    // The code action's carousel (fetch against the example backend) and the quick replies.
    await page.locator(".card").first().waitFor();
    assert.equal(await page.locator(".card").count(), 3);
    await page.getByText("That's 3 meetup(s) in JUNE.").waitFor();
    const action = page.locator("#emu-actions .action").first();
    assert.match(await action.textContent(), /code meetups\.js @lookup: ok · fuel \d+ · [\d.]+ ms/);
    assert.match(await page.locator("#emu-session").textContent(), /"month": "June"/);

    // Carousels keep their height once the log scrolls (they used to collapse to 0 px).
    const height = async () => (await page.locator(".cards").first().boundingBox()).height;
    const before = await height();
    for (let n = 0; n < 6; n++) {
      await page.getByLabel("message").fill(`hello ${n}`);
      await page.getByRole("button", { name: "Send" }).click();
      await page.locator(".msg.user", { hasText: `hello ${n}` }).waitFor();
    }
    await page.locator(".msg.bot").last().waitFor();
    assert.ok(before > 100, `a carousel is ${before} px high`);
    assert.equal(await height(), before, "the first carousel keeps its height");
    await page.getByRole("button", { name: "Done" }).first().click();
    await page.locator(".media img").waitFor();
    await page.screenshot({ path: process.env.SCREENSHOT || "/tmp/sandbot-web-chat.png", fullPage: true });
  } finally {
    await browser.close();
  }
});

test("the web chat's conversation is the server's, bound to its token", async () => {
  const url = `${base}/v1/channels/web/meetups`;
  const post = (path, headers, body) => fetch(`${url}/${path}`, {
    method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body),
  });
  const opened = await (await post("sessions", {}, {})).json();
  assert.match(opened.conversationId, /^web_[0-9a-f]{32}$/);
  const noToken = await post("messages", {}, { message: { introMessage: {} } });
  assert.equal(noToken.status, 401);
  const auth = { Authorization: `Bearer ${opened.session}` };
  const foreign = await post("messages", auth, { conversationId: "someone-else", message: { introMessage: {} } });
  assert.equal(foreign.status, 403);
  const mine = await post("messages", auth, { message: { introMessage: {} } });
  assert.equal(mine.status, 200);
  assert.equal((await mine.json()).emulator, undefined, "no emulator data without the tenant's token");
});

test("the widget on another site's page: launcher, open/close, language", async () => {
  // A shop's page on another origin (another port) embeds the widget.
  const shop = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>Shop</title><h1>Shop</h1>
      <script src="${base}/widget.js" data-bot="meetups" data-lang="nl"></script>`);
  });
  await new Promise((ok) => shop.listen(0, "127.0.0.1", ok));
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${shop.address().port}/`);
    await page.locator("#sandbot-launcher").click();
    const chat = page.frameLocator("#sandbot-chat");
    // The visitor's language from the embed options: the bot's Dutch half.
    await chat.getByText("Hoi! Ik zoek tech-meetups.").waitFor();
    await chat.getByRole("button", { name: "Zoek een meetup" }).click();
    await chat.locator(".msg.bot").nth(1).waitFor();
    await page.evaluate(() => window.sandbot.close());
    assert.equal(await page.locator("#sandbot-chat").isVisible(), false);
    await page.evaluate(() => window.sandbot.open());
    assert.equal(await page.locator("#sandbot-chat").isVisible(), true);
    await page.screenshot({ path: process.env.WIDGET_SCREENSHOT || "/tmp/sandbot-widget.png" });
  } finally {
    await browser.close();
    shop.close();
  }
});

test("addHtml is rendered sanitized, addIframe in a sandboxed frame", async () => {
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/chat/meetups`);
    await page.getByText("Hi! I find tech meetups.").waitFor();
    // What a code action's addHtml / addIframe send, hostile parts included.
    await page.evaluate(() => {
      render({ type: "html", config: { withBalloon: true, html:
        '<p><b>Bold</b> and <i>it</i></p><a href="javascript:window.pwned=1">bad</a> ' +
        '<a href="https://ok.example/a">ok</a><img src="x" onerror="window.pwned=2">' +
        '<script>window.pwned=3</script><div onclick="window.pwned=4" style="position:fixed">text</div>' +
        '<iframe src="https://evil.example"></iframe><form><input></form>' } });
      render({ type: "iframe", config: { url: "about:blank#map", height: 250, withBalloon: false } });
      render({ type: "iframe", config: { url: "https://map.example/", height: 250, withBalloon: false } });
      render({ type: "iframe", config: { url: "javascript:window.pwned=5" } });
    });
    const html = page.locator(".msg.html");
    assert.equal(await html.locator("b").textContent(), "Bold");
    assert.equal(await html.locator("p i").textContent(), "it");
    assert.equal(await html.locator("script, iframe, form, input, [onclick], [onerror], [style]").count(), 0);
    assert.equal(await html.locator('a[href^="javascript"]').count(), 0);
    const ok = html.locator('a[href="https://ok.example/a"]');
    assert.equal(await ok.getAttribute("target"), "_blank");
    assert.equal(await ok.getAttribute("rel"), "noopener noreferrer");
    assert.match(await html.textContent(), /bad/); // the text stays, the link goes
    const frame = page.locator(".msg.frame.bare iframe");
    assert.equal(await frame.count(), 1, "only the http(s) frame");
    assert.equal(await frame.getAttribute("sandbox"), "allow-scripts allow-forms allow-popups");
    assert.equal(await frame.getAttribute("src"), "https://map.example/");
    assert.equal(Math.round((await frame.boundingBox()).height), 250);
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.pwned), undefined, "nothing of it ran");
  } finally {
    await browser.close();
  }
});

test("a reload keeps the conversation; Restart starts a new one; offline is said", async () => {
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/chat/meetups`);
    await page.getByText("Hi! I find tech meetups.").waitFor();
    await page.getByRole("button", { name: "Find a meetup" }).click();
    await page.getByText("Which month? June or July?").waitFor();
    const token = await page.evaluate(() => localStorage.getItem("sandbot-web-meetups"));

    // A reload shows the conversation so far (and does not start it again).
    await page.reload();
    await page.getByText("Which month? June or July?").waitFor();
    await page.locator(".msg.user", { hasText: "Find a meetup" }).waitFor();
    await page.waitForTimeout(300);
    assert.equal(await page.getByText("Hi! I find tech meetups.").count(), 1);
    await page.getByLabel("message").fill("july");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".card").first().waitFor();

    // The server cannot be reached: said, and the message can be sent again.
    await page.route("**/v1/channels/web/meetups/messages", (route) => route.abort());
    await page.getByLabel("message").fill("hello?");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".notice", { hasText: "cannot be reached" }).waitFor();
    await page.unroute("**/v1/channels/web/meetups/messages");
    const bots = await page.locator(".msg.bot").count();
    await page.locator(".notice").getByRole("button", { name: "Retry" }).click();
    await page.waitForFunction((n) => document.querySelectorAll(".msg.bot").length > n, bots);
    assert.equal(await page.locator(".notice").count(), 0);

    // The server takes the message but its answer is lost on the way back:
    // sent again (the same id), the server takes it once, and the page shows
    // what the bot said, once.
    await page.route("**/v1/channels/web/meetups/messages", async (route) => {
      if (route.request().method() !== "POST") return route.continue();
      await route.fetch();
      await route.abort();
    });
    const shown = await page.locator(".msg.bot").count();
    await page.getByLabel("message").fill("are you there?");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".notice", { hasText: "cannot be reached" }).waitFor();
    await page.unroute("**/v1/channels/web/meetups/messages");
    await page.locator(".notice").getByRole("button", { name: "Retry" }).click();
    await page.waitForFunction((n) => document.querySelectorAll(".msg.bot").length > n, shown);
    const history = await (await fetch(`${base}/v1/channels/web/meetups/messages`, {
      headers: { Authorization: `Bearer ${await page.evaluate(() => localStorage.getItem("sandbot-web-meetups"))}` },
    })).json();
    const asked = history.messages.findIndex((m) => m.from === "user" && m.text === "are you there?");
    assert.equal(history.messages.filter((m) => m.from === "user" && m.text === "are you there?").length, 1, "taken once");
    // (A carousel is shown as cards, not as a bubble.)
    const answered = history.messages.slice(asked + 1).filter((m) => m.from === "bot" && m.message.type !== "carousel").length;
    assert.ok(answered > 0);
    await page.waitForTimeout(1000);
    assert.equal(await page.locator(".msg.bot").count(), shown + answered, "the bot's answer shown once");
    assert.equal(await page.locator(".msg.user", { hasText: "are you there?" }).count(), 1);

    // Restart: a new conversation, from its introduction.
    await page.getByRole("button", { name: "Restart" }).click();
    await page.getByText("Hi! I find tech meetups.").waitFor();
    assert.equal(await page.locator(".msg.user").count(), 0);
    assert.notEqual(await page.evaluate(() => localStorage.getItem("sandbot-web-meetups")), token);
  } finally {
    await browser.close();
  }
});

test("on a 390 px phone the chat keeps its bubbles and Send button (emulator below)", async () => {
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.addInitScript(() => sessionStorage.setItem("sandbot-web-meetups@DRAFT-tenant", "demo-token"));
    // The emulator is the DRAFT's.
    await page.goto(`${base}/chat/meetups?version=DRAFT`);
    await page.getByText("Hi! I find tech meetups.").waitFor();
    await page.getByLabel("message").fill("hello from a phone");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".msg.user", { hasText: "hello from a phone" }).waitFor();
    // The chat has the phone's width, and what the visitor needs is on top, not covered.
    assert.ok((await page.locator("#chat").boundingBox()).width >= 380);
    for (const selector of [".msg.user", "#form button"]) {
      const visible = await page.locator(selector).last().evaluate((e) => {
        const r = e.getBoundingClientRect();
        const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return r.width > 40 && r.x >= 0 && r.right <= 390 && (hit === e || e.contains(hit));
      });
      assert.ok(visible, `${selector} is visible at 390 px`);
    }
    await page.screenshot({ path: process.env.PHONE_SCREENSHOT || "/tmp/sandbot-web-chat-390.png" });
  } finally {
    await browser.close();
  }
});

test("an agent takes over the shop's chat, answers in it, and hands back", async () => {
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage();
    await page.addInitScript(() => sessionStorage.setItem("sandbot-web-shop@DRAFT-tenant", "demo-token"));
    // The emulator is the DRAFT's.
    await page.goto(`${base}/chat/shop?version=DRAFT`);
    await page.getByText("Welcome to the shop!").waitFor();
    await page.getByLabel("message").fill("talk to a human");
    await page.getByRole("button", { name: "Send" }).click();
    // The example backend's stand-in desk accepts: the bot pauses.
    await page.getByText("A colleague will take over here in a moment.").waitFor();
    // The emulator panel says so.
    await page.locator("#emu-block", { hasText: "bot paused — offloaded to desk" }).waitFor();
    const token = await page.evaluate(() => localStorage.getItem("sandbot-web-shop@DRAFT"));
    const history = await (await fetch(`${base}/v1/channels/web/shop@DRAFT/messages`, {
      headers: { Authorization: `Bearer ${token}` },
    })).json();
    assert.equal(history.paused, true);
    // The visitor writes; the bot stays quiet while the agent has the chat.
    // The agent answers through the REST API at the same moment, and the
    // agent's message is committed first (the visitor's is held on the way):
    // the page shows it all the same (its answer's cursor is past it; the
    // page used to skip it until a reload).
    let release;
    const held = new Promise((r) => { release = r; });
    const messages = (url) => url.pathname.endsWith("/messages");
    await page.route(messages, async (route) => {
      if (route.request().method() === "POST") await held;
      await route.continue();
    });
    await page.getByLabel("message").fill("hello?");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".msg.user", { hasText: "hello?" }).waitFor();
    const actions = `${base}/v1/bots/shop/conversations/${history.conversationId}/actions?version=DRAFT`;
    const rest = (body) => fetch(actions, {
      method: "POST",
      headers: { Authorization: "Bearer demo-token", "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answered = await rest({ sendMessages: [{ textMessageTemplate: { text: "Hi, Ann from the shop here." } }] });
    assert.equal(answered.status, 200, await answered.text());
    release();
    await page.getByText("Hi, Ann from the shop here.").waitFor({ timeout: 10000 });
    await page.unroute(messages);
    // And hands back: the bot greets again.
    const back = await rest({ pause: false, goToDialogstate: "intro" });
    assert.equal(back.status, 200, await back.text());
    await page.locator(".msg.bot", { hasText: "Welcome to the shop!" }).nth(1).waitFor({ timeout: 10000 });
    const bubbles = await page.locator(".msg").allTextContents();
    assert.ok(!bubbles.some((b) => b.includes("Sorry, I didn't get that")), bubbles.join(" | "));
  } finally {
    await browser.close();
  }
});

test("the web chat shows a Silence detected message when it is due, once", async () => {
  // Its own server: a bot with the event, and a minute of 500 ms.
  const dir = mkdtempSync(join(tmpdir(), "sandbot-silence-"));
  mkdirSync(join(dir, "bot/flows"), { recursive: true });
  writeFileSync(join(dir, "bot/bot.yaml"), "id: quiet\nname: Quiet\nevents:\n  silenceDetected: { minutes: 2, goto: nudge }\n");
  writeFileSync(join(dir, "bot/flows/main.yaml"), `blocks:
  - { id: intro, system: introduction, type: input, variable: name, question: "Your name?", nlp: false, goto: hello }
  - { id: hello, type: message, messages: [{ text: "Hello {name}" }] }
  - { id: nudge, type: message, messages: [{ text: "Still there?" }] }
  - { id: nu, system: notUnderstood, type: message, messages: [{ text: "NU" }] }
  - { id: err, system: errorOccurred, type: message, messages: [{ text: "ERR" }] }
  - { id: off, system: botDisabled, type: message, messages: [{ text: "OFF" }] }
`);
  const hash = createHash("sha256").update("t").digest("hex");
  writeFileSync(join(dir, "serve.yaml"), `listen: 127.0.0.1:18091
data: data
silenceMinuteMs: 500
tenants: [{ id: t, tokens: ["sha256:${hash}"] }]
bots: [{ folder: bot, tenant: t, channels: { web: true } }]
`);
  const url = "http://127.0.0.1:18091";
  const server = await serve(join(dir, "serve.yaml"), url);
  try {
    const browser = await chromium.launch({ executablePath, args });
    try {
      const page = await browser.newPage();
      await page.goto(`${url}/chat/quiet`);
      await page.getByText("Your name?").waitFor();
      await page.getByText("Still there?").waitFor({ timeout: 15000 });
      const nudges = () => page.locator(".msg.bot", { hasText: "Still there?" }).count();
      assert.equal(await nudges(), 1);
      // An answer: no more nudges.
      await page.getByLabel("message").fill("Ann");
      await page.getByRole("button", { name: "Send" }).click();
      await page.getByText("Hello Ann").waitFor();
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(await nudges(), 1);
    } finally {
      await browser.close();
    }
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unknown bot has no web chat", async () => {
  const res = await fetch(`${base}/chat/nope`);
  assert.equal(res.status, 404);
});
