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
(cd "$repo" && cargo build --quiet -p sandbot)
outcome() {
  "$repo/target/debug/sandbot" action run --plugin "$1" \
    --input '{"variable":"user.iban","onValid":"confirm-payment","onInvalid":"ask-iban"}' \
    --session "$2" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("stats"); print(json.dumps(d, sort_keys=True))' || true
}
failed=0
for session in '{"user":{"iban":"BE71 0961 2345 6769"}}' '{"user":{"iban":"BE71 0961 2345 6760"}}' \
  '{"user":{"iban":"ZZ12 3456 7890"}}' '{"user":{"iban":"BE71 0961"}}' '{"user":{"iban":"BE71!"}}' '{}'; do
  if [ "$(outcome "$out" "$session")" != "$(outcome "$here/iban-js.wasm" "$session")" ]; then
    echo "iban-js.wasm behaves otherwise than a rebuild of its source on $session: run examples/plugins/iban-js/build.sh and commit it" >&2
    failed=1
  fi
done
rm -f "$out"
[ $failed = 0 ] && echo "iban-js.wasm: a rebuild behaves the same on 6 inputs" >&2
exit $failed
