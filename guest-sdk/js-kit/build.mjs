// Builds a JavaScript plugin: bundles ENTRY with the kit (esbuild; the
// sandbot:action imports stay imports), then componentize-js makes it a
// component of the sandbot:action world.
//   node guest-sdk/js-kit/build.mjs ENTRY.js OUT.wasm
import { build } from "esbuild";
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const [entry, out] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const bundled = join(mkdtempSync(join(tmpdir(), "sandbot-js-")), "plugin.js");
await build({
  entryPoints: [entry],
  bundle: true,
  format: "esm",
  outfile: bundled,
  external: ["sandbot:action/*"],
  alias: { "sandbot-kit": join(here, "sandbot.js") },
  logLevel: "warning",
});
const { component } = await componentize({
  sourcePath: bundled,
  witPath: join(here, "../../wit"),
  worldName: "action",
  // The plugin reaches the network only through sandbot:action/http.
  disableFeatures: ["http", "fetch-event", "stdio", "random", "clocks"],
});
writeFileSync(out, component);
console.error(`wrote ${out} (${component.length} bytes)`);
