// What the browser tests share: Debian's Chromium with the flags this
// machine needs, and a `sandbot serve` of their own for a config file.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
export const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const bin = process.env.SANDBOT_BIN || fileURLToPath(new URL("../../target/debug/sandbot", import.meta.url));

// Starts `sandbot serve --config CONFIG` and waits until `url` answers /healthz.
export async function serve(config, url) {
  const server = spawn(bin, ["serve", "--config", config], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return server;
}
