#!/usr/bin/env bash
# Runs the Python example plugin once, as examples/plugins/iban/run.sh runs
# the Rust one (same input and session).
#   examples/plugins/iban-py/run.sh "BE71 0961 2345 6769"
here=$(cd "$(dirname "$0")" && pwd)
PLUGIN="$here/iban-py.wasm" exec "$here/../iban/run.sh" "$@"
