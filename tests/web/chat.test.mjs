// The web chat in a real browser: headless Chromium (Debian's) driven by
// playwright-core against `sandbot serve` (started by the caller, default
// http://127.0.0.1:18080, serving the example bots without a config).
//   SANDBOT_URL=http://127.0.0.1:18080 node --test tests/web/
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const base = process.env.SANDBOT_URL || "http://127.0.0.1:18080";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

test("a conversation with the meetups bot, clicked through", async () => {
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage();
    // The emulator's data needs the tenant's token (the panel's field keeps it per tab).
    await page.addInitScript(() => sessionStorage.setItem("sandbot-web-meetups-tenant", "demo-token"));
    await page.goto(`${base}/chat/meetups`);
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

test("an unknown bot has no web chat", async () => {
  const res = await fetch(`${base}/chat/nope`);
  assert.equal(res.status, 404);
});
