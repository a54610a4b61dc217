#!/usr/bin/env bash
# Whether two builds of a plugin behave the same: the outcome (all but the
# stats) of each on the same inputs — by default the IBAN plugin's six
# (valid, invalid four ways, a missing variable), or the INPUT SESSION pairs
# given. For toolchains that do not build bit-for-bit (componentize-js,
# componentize-py): their committed components are checked by behaviour.
#   examples/plugins/iban/same-outcomes.sh COMMITTED.wasm REBUILT.wasm [INPUT SESSION]...
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
(cd "$repo" && cargo build --quiet -p sandbot)
outcome() {
  "$repo/target/debug/sandbot" action run --plugin "$1" --input "$2" --session "$3" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("stats"); print(json.dumps(d, sort_keys=True))' || true
}
committed=$1 rebuilt=$2
shift 2
if [ $# = 0 ]; then
  iban='{"variable":"user.iban","onValid":"confirm-payment","onInvalid":"ask-iban"}'
  set -- "$iban" '{"user":{"iban":"BE71 0961 2345 6769"}}' "$iban" '{"user":{"iban":"BE71 0961 2345 6760"}}' \
    "$iban" '{"user":{"iban":"ZZ12 3456 7890"}}' "$iban" '{"user":{"iban":"BE71 0961"}}' \
    "$iban" '{"user":{"iban":"BE71!"}}' "$iban" '{}'
fi
failed=0 n=0
while [ $# -ge 2 ]; do
  n=$((n + 1))
  if [ "$(outcome "$committed" "$1" "$2")" != "$(outcome "$rebuilt" "$1" "$2")" ]; then
    echo "$committed behaves otherwise than a rebuild of its source on $1 with $2" >&2
    failed=1
  fi
  shift 2
done
[ $failed = 0 ] && echo "$(basename "$committed"): a rebuild behaves the same on $n inputs" >&2
exit $failed
