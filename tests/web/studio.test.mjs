// The studio in a real browser (headless Chromium, playwright-core): sign in,
// open a code action, complete the API, see a syntax error at its line, run
// with args, save, publish, and chat with the LIVE bot using the new code;
// another tenant sees none of it. Starts its own `sandbot serve` on a copy
// of a bot (the studio writes the bot's files).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { args, executablePath, serve } from "./serve.mjs";

const url = "http://127.0.0.1:18093";
const GREET = "say(`Hello, ${args.name || 'stranger'}!`);\n";

async function withServer(fn) {
  const dir = mkdtempSync(join(tmpdir(), "sandbot-studio-"));
  mkdirSync(join(dir, "bot/flows"), { recursive: true });
  mkdirSync(join(dir, "bot/actions"), { recursive: true });
  writeFileSync(join(dir, "bot/bot.yaml"), "id: greeter\nname: Greeter\n");
  writeFileSync(join(dir, "bot/flows/main.yaml"), `blocks:
  - { id: intro, system: introduction, type: action, code: greet.js, args: { name: "{user.name}", greeting: Hello } }
  - { id: nu, system: notUnderstood, type: message, messages: [{ text: "NU" }] }
  - { id: err, system: errorOccurred, type: message, messages: [{ text: "ERR" }] }
  - { id: off, system: botDisabled, type: message, messages: [{ text: "OFF" }] }
`);
  writeFileSync(join(dir, "bot/actions/greet.js"), GREET);
  const hash = (t) => "sha256:" + createHash("sha256").update(t).digest("hex");
  writeFileSync(join(dir, "serve.yaml"), `listen: 127.0.0.1:18093
data: data
tenants:
  - { id: acme, tokens: ["${hash("acme-token")}"] }
  - { id: other, tokens: ["${hash("other-token")}"] }
bots:
  - { folder: bot, tenant: acme, version: LIVE, channels: { web: true } }
  - { folder: bot, tenant: acme, version: DRAFT, channels: { web: true } }
`);
  const server = await serve(join(dir, "serve.yaml"), url);
  try {
    const browser = await chromium.launch({ executablePath, args });
    try {
      await fn(browser, dir);
    } finally {
      await browser.close();
    }
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function signIn(browser, token) {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  await page.goto(`${url}/studio`);
  await page.getByLabel("tenant token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  return page;
}

// Replaces the editor's text (no key events: brackets are not auto-closed).
async function setCode(page, text) {
  await page.locator(".cm-content").click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(text);
}

test("write, run, save and publish a code action in the studio", async () => {
  await withServer(async (browser, dir) => {
    const page = await signIn(browser, "acme-token");
    assert.equal(await page.evaluate(() => document.cookie), "", "the session cookie is HttpOnly");
    await page.getByText("Greeter (greeter)").waitFor();
    await page.getByText("used by intro").waitFor();
    await page.locator("#bots a", { hasText: "greet.js" }).click();
    await page.locator(".cm-content", { hasText: "Hello, ${args.name" }).waitFor();
    // The block's args are pre-filled.
    assert.match(await page.locator("#args").inputValue(), /"greeting": "Hello"/);

    // A completion for ChatlayerResponseBuilder().addQu…
    await setCode(page, "ChatlayerResponseBuilder().");
    await page.keyboard.type("addQu");
    const option = page.locator(".cm-tooltip-autocomplete li", { hasText: "addQuickReplies" });
    await option.waitFor();
    await page.keyboard.press("Escape");
    // args. completes the block's argument names.
    await setCode(page, "args.");
    await page.keyboard.type("gr");
    await page.locator(".cm-tooltip-autocomplete li", { hasText: "greeting" }).waitFor();
    await page.keyboard.press("Escape");

    // A syntax error is underlined on its line (the 2nd).
    await setCode(page, "say('a');\nconst x = {;\nsay('b');");
    const underline = page.locator(".cm-lintRange-error");
    await underline.waitFor();
    const line = await underline.first().evaluate((el) => {
      const lines = [...document.querySelectorAll(".cm-content .cm-line")];
      return lines.indexOf(el.closest(".cm-line")) + 1;
    });
    assert.equal(line, 2);
    await page.locator(".cm-gutter-lint .cm-lint-marker-error").waitFor();

    // Fixed, run with args: messages, session diff and the fuel bar.
    await setCode(page, "say(`Howdy, ${args.name || 'partner'}!`);\nChatlayerResponseBuilder().addSessionVariable('greeted', true).send();\n");
    await page.locator(".cm-lintRange-error").waitFor({ state: "detached" });
    await page.locator("#args").fill('{ "name": "Ada" }');
    await page.getByRole("button", { name: "Run" }).click();
    await page.locator("#messages", { hasText: "Howdy, Ada!" }).waitFor();
    await page.locator("#diff", { hasText: "greeted" }).waitFor();
    assert.equal(await page.locator("#outcome .ok").textContent(), "ok");
    assert.match(await page.locator("[data-bar=fuel]").textContent(), /^fuel: [\d.,]+ of 1,000 M/);
    assert.match(await page.locator("[data-bar=memory]").textContent(), /of 128 MiB/);
    const screenshot = process.env.SCREENSHOT_DIR;
    if (screenshot) await page.screenshot({ path: join(screenshot, "studio.png") });

    // A failing run marks its line.
    await setCode(page, "const a = 1;\nnull.x;\n");
    await page.getByRole("button", { name: "Run" }).click();
    await page.locator("#outcome .failed", { hasText: "js_error" }).waitFor();
    await setCode(page, "say(`Howdy, ${args.name || 'partner'}!`);\nChatlayerResponseBuilder().addSessionVariable('greeted', true).send();\n");

    // Save, then publish: the LIVE web chat uses the new code.
    await page.getByLabel("version message").fill("friendlier greeting");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("#status", { hasText: "saved as version 2 (DRAFT)" }).waitFor();
    assert.match(readFileSync(join(dir, "bot/actions/greet.js"), "utf8"), /Howdy/);
    const chat = await browser.newPage();
    await chat.goto(`${url}/chat/greeter`);
    await chat.getByText("Hello, stranger!").waitFor();
    await page.getByRole("button", { name: "Publish" }).click();
    await page.locator("#status", { hasText: "version 2 is LIVE" }).waitFor();
    await page.locator("#bots", { hasText: "LIVE: version 2" }).waitFor();
    await chat.getByRole("button", { name: "Restart" }).click();
    await chat.getByText("Howdy, partner!").waitFor();

    // Versions: the list and a diff.
    await page.getByRole("button", { name: "Versions" }).click();
    await page.locator("#versions", { hasText: "friendlier greeting" }).waitFor();
    await page.locator("#versions tr", { hasText: "v2" }).getByRole("button", { name: "diff" }).click();
    await page.locator("#version-diff", { hasText: "+say(`Howdy" }).waitFor();
  });
});

test("a refused save says why and another tenant sees nothing", async () => {
  await withServer(async (browser, dir) => {
    const page = await signIn(browser, "acme-token");
    await page.locator("#bots a", { hasText: "greet.js" }).click();
    await page.locator(".cm-content", { hasText: "Hello" }).waitFor();
    await setCode(page, "say('broken';\n");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("#problems", { hasText: "Refused, nothing was changed" }).waitFor();
    assert.equal(readFileSync(join(dir, "bot/actions/greet.js"), "utf8"), GREET);

    const other = await signIn(browser, "other-token");
    await other.getByText("This tenant has no bots.").waitFor();
    assert.equal(await other.locator("#bots a").count(), 0);
    const api = await other.evaluate(async () => {
      const r = await fetch("/v1/studio/bots/greeter", { credentials: "same-origin" });
      return [r.status, (await r.json()).error];
    });
    assert.deepEqual(api, [404, "no bot `greeter`"]);
    // A wrong token is refused on the page.
    const wrong = await signIn(browser, "nope");
    await wrong.getByText("That token belongs to no tenant.").waitFor();
  });
});

test("a failure in production is replayed in the studio and the fix passes", async () => {
  await withServer(async (browser) => {
    const page = await signIn(browser, "acme-token");
    await page.locator("#bots a", { hasText: "greet.js" }).click();
    await page.locator(".cm-content", { hasText: "Hello" }).waitFor();
    // A bug: a visitor without a name breaks it.
    await setCode(page, "say('Hi ' + args.name.toUpperCase());\n");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("#status", { hasText: "saved as version 2" }).waitFor();
    await page.getByRole("button", { name: "Publish" }).click();
    await page.locator("#status", { hasText: "version 2 is LIVE" }).waitFor();
    const chat = await browser.newPage();
    await chat.goto(`${url}/chat/greeter`);
    await chat.locator(".msg.bot", { hasText: "ERR" }).waitFor();

    await page.getByRole("button", { name: "refresh" }).click();
    const failure = page.locator("#failures .failure").first();
    await failure.getByText("js_error").waitFor();
    await failure.getByRole("button", { name: "replay", exact: true }).click();
    await page.locator("#outcome .failed", { hasText: "js_error" }).waitFor();
    await page.locator(".cm-lintRange-error").waitFor();
    // The fix, replayed on the same data.
    await setCode(page, "say('Hi ' + (args.name || 'there').toUpperCase());\n");
    await failure.getByRole("button", { name: "replay with this code" }).click();
    await page.locator("#messages", { hasText: "Hi THERE" }).waitFor();
    assert.equal(await page.locator("#outcome .ok").textContent(), "ok");
  });
});
