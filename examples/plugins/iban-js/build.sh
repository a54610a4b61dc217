#!/usr/bin/env bash
# Builds the JavaScript example plugin from source with the Sandbot JS kit:
# esbuild bundles iban.js with guest-sdk/js-kit/sandbot.js, componentize-js
# (SpiderMonkey) makes it a sandbot:action component. The toolchain comes
# from the npm registry, pinned by guest-sdk/js-kit/package-lock.json.
#
#   examples/plugins/iban-js/build.sh          rebuild and overwrite iban-js.wasm
#   examples/plugins/iban-js/build.sh --check  rebuild elsewhere and check it
#
# componentize-js 0.23.0 does not build bit-for-bit (two builds of one source
# differ by some bytes of its engine snapshot), so the check is by behaviour:
# the rebuilt and the committed component must give the same outcome on the
# same inputs (valid, invalid four ways, a missing variable).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
here="$repo/examples/plugins/iban-js"
kit="$repo/guest-sdk/js-kit"
mode=${1:-write}
(cd "$kit" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
out="$here/iban-js.wasm"
[ "$mode" = --check ] && out=$(mktemp --suffix=.wasm)
node "$kit/build.mjs" "$here/iban.js" "$out"
[ "$mode" = --check ] || exit 0
trap 'rm -f "$out"' EXIT
"$repo/examples/plugins/iban/same-outcomes.sh" "$here/iban-js.wasm" "$out" ||
  { echo "run examples/plugins/iban-js/build.sh and commit iban-js.wasm" >&2; exit 1; }
