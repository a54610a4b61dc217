#!/usr/bin/env bash
# Whether two builds of the IBAN plugin behave the same: the outcome (all
# but the stats) of each on six inputs — valid, invalid four ways, a missing
# variable. For toolchains that do not build bit-for-bit (componentize-js,
# componentize-py): their committed component is checked by behaviour.
#   examples/plugins/iban/same-outcomes.sh COMMITTED.wasm REBUILT.wasm
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
(cd "$repo" && cargo build --quiet -p sandbot)
outcome() {
  "$repo/target/debug/sandbot" action run --plugin "$1" \
    --input '{"variable":"user.iban","onValid":"confirm-payment","onInvalid":"ask-iban"}' \
    --session "$2" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("stats"); print(json.dumps(d, sort_keys=True))' || true
}
failed=0
for session in '{"user":{"iban":"BE71 0961 2345 6769"}}' '{"user":{"iban":"BE71 0961 2345 6760"}}' \
  '{"user":{"iban":"ZZ12 3456 7890"}}' '{"user":{"iban":"BE71 0961"}}' '{"user":{"iban":"BE71!"}}' '{}'; do
  if [ "$(outcome "$1" "$session")" != "$(outcome "$2" "$session")" ]; then
    echo "$1 behaves otherwise than a rebuild of its source on $session" >&2
    failed=1
  fi
done
[ $failed = 0 ] && echo "$(basename "$1"): a rebuild behaves the same on 6 inputs" >&2
exit $failed
