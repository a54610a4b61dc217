#!/usr/bin/env bash
# Writes the JS runner's Intl data (guest-sdk/js-runner/intl/icudata.postcard):
# Boa's ICU4X data (boa_icu_provider, every CLDR locale) trimmed to the
# languages in guest-sdk/js-runner/intl/languages.txt by the host tool in
# guest-sdk/intl-data (its own Cargo.lock pins every version).
#
#   guest-sdk/scripts/intl-data.sh          rewrite the blob
#   guest-sdk/scripts/intl-data.sh --check  fail if a rebuild gives other bytes
set -euo pipefail
sdk=$(cd "$(dirname "$0")/.." && pwd)
tool="$sdk/intl-data"
intl="$sdk/js-runner/intl"
mode=${1:-write}

(cd "$tool" && cargo build --quiet --release --locked)
source=$(cd "$tool" && cargo metadata --format-version 1 --locked |
  python3 -c 'import json,sys,os; d=json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in d["packages"] if p["name"]=="boa_icu_provider"))')
languages=$(grep -v '^#' "$intl/languages.txt" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')

out="$intl/icudata.postcard"
[ "$mode" = --check ] && out=$(mktemp)
"$tool/target/release/sandbot-intl-data" "$source/data" "$out" "$languages"
if [ "$mode" = --check ]; then
  if cmp -s "$out" "$intl/icudata.postcard"; then
    echo "intl data: rebuilt bit-for-bit"
  else
    echo "intl data: a rebuild differs from guest-sdk/js-runner/intl/icudata.postcard" >&2
    exit 1
  fi
fi
