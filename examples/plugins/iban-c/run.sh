#!/usr/bin/env bash
# Runs the C example plugin once through `sandbot action run`, as
# examples/plugins/iban/run.sh runs the Rust one.
#   examples/plugins/iban-c/run.sh "BE71 0961 2345 6769"
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
iban=${1:-BE71 0961 2345 6769}
session=$(printf '{"user":{"iban":"%s"}}' "$iban")
exec cargo run --quiet --manifest-path "$repo/Cargo.toml" -p sandbot -- action run \
  --plugin "$repo/examples/plugins/iban-c/iban-c.wasm" \
  --input '{"variable":"user.iban","onValid":"confirm-payment","onInvalid":"ask-iban"}' \
  --session "$session"
