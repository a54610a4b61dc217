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
# The example, and the kit's test guest (tests/all/sandbox/cases.rs).
iban="$here/iban-js.wasm" guest="$kit/test-guest-js.wasm"
if [ "$mode" != --check ]; then
  node "$kit/build.mjs" "$here/iban.js" "$iban"
  node "$kit/build.mjs" "$kit/test_guest.js" "$guest"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node "$kit/build.mjs" "$here/iban.js" "$tmp/iban.wasm"
node "$kit/build.mjs" "$kit/test_guest.js" "$tmp/guest.wasm"
same="$repo/examples/plugins/iban/same-outcomes.sh"
"$same" "$iban" "$tmp/iban.wasm" && "$same" "$guest" "$tmp/guest.wasm" \
  '{"case":"session","next":"b"}' '{"counter":3,"obsolete":1}' '{"case":"set_then_fail"}' '{}' \
  '{"case":"write_internal"}' '{}' ||
  { echo "run examples/plugins/iban-js/build.sh and commit what it writes" >&2; exit 1; }
