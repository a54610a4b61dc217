#!/usr/bin/env bash
# Runs the C example plugin once through `sandbot action run`, as
# examples/plugins/iban/run.sh runs the Rust one (same input and session).
#   examples/plugins/iban-c/run.sh "BE71 0961 2345 6769"
here=$(cd "$(dirname "$0")" && pwd)
PLUGIN="$here/iban-c.wasm" exec "$here/../iban/run.sh" "$@"
