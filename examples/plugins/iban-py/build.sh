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
out="$here/iban-py.wasm"
[ "$mode" = --check ] && out=$(mktemp --suffix=.wasm)
"$venv/bin/componentize-py" -d "$repo/wit" -w action componentize iban \
  -p "$here" -p "$repo/guest-sdk/py-kit" -o "$out" >/dev/null
echo "wrote $out ($(wc -c <"$out") bytes)" >&2
[ "$mode" = --check ] || exit 0
trap 'rm -f "$out"' EXIT
"$repo/examples/plugins/iban/same-outcomes.sh" "$here/iban-py.wasm" "$out" ||
  { echo "run examples/plugins/iban-py/build.sh and commit iban-py.wasm" >&2; exit 1; }
