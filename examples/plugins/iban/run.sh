#!/usr/bin/env bash
# Runs the example IBAN plugin once through `sandbot action run`.
#   examples/plugins/iban/run.sh "BE71 0961 2345 6769"
# Prints the outcome (one JSON document); exits 0 when the action succeeded.
# PLUGIN=path runs another build of the same plugin (examples/plugins/iban-c).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
iban=${1:-BE71 0961 2345 6769}
session=$(printf '{"user":{"iban":"%s"}}' "$iban")
exec cargo run --quiet --manifest-path "$repo/Cargo.toml" -p sandbot -- action run \
  --plugin "${PLUGIN:-$repo/guest-sdk/artifacts/iban-plugin.wasm}" \
  --input '{"variable":"user.iban","onValid":"confirm-payment","onInvalid":"ask-iban"}' \
  --session "$session"
