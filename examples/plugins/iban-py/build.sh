#!/usr/bin/env bash
# Builds the Python example plugin from source with the Sandbot Python kit
# (guest-sdk/py-kit/sandbot.py): componentize-py (CPython inside) makes
# iban.py a sandbot:action component. componentize-py comes from PyPI,
# pinned, installed once into a virtual environment under guest-sdk/.toolchain.
#
#   examples/plugins/iban-py/build.sh          rebuild and overwrite iban-py.wasm
#   examples/plugins/iban-py/build.sh --check  rebuild elsewhere and check it
#
# componentize-py 0.25.1 does not build bit-for-bit, so the check is by
# behaviour (examples/plugins/iban/same-outcomes.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
here="$repo/examples/plugins/iban-py"
mode=${1:-write}
version=0.25.1
venv="$repo/guest-sdk/.toolchain/componentize-py"
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q "$version"; then
  echo "installing componentize-py $version (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "componentize-py==$version"
fi
kit="$repo/guest-sdk/py-kit"
build() { "$venv/bin/componentize-py" -d "$repo/wit" -w action componentize "$1" -p "$2" -p "$kit" -o "$3" >/dev/null; }
# The example, and the kit's test guest (tests/all/sandbox/cases.rs).
iban="$here/iban-py.wasm" guest="$kit/test-guest-py.wasm"
if [ "$mode" != --check ]; then
  build iban "$here" "$iban"
  build test_guest "$kit" "$guest"
  echo "wrote $iban, $guest" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build iban "$here" "$tmp/iban.wasm"
build test_guest "$kit" "$tmp/guest.wasm"
same="$repo/examples/plugins/iban/same-outcomes.sh"
"$same" "$iban" "$tmp/iban.wasm" && "$same" "$guest" "$tmp/guest.wasm" \
  '{"case":"session","next":"b"}' '{"counter":3,"obsolete":1}' '{"case":"set_then_fail"}' '{}' \
  '{"case":"write_internal"}' '{}' ||
  { echo "run examples/plugins/iban-py/build.sh and commit what it writes" >&2; exit 1; }
