#!/usr/bin/env bash
# Builds the C plugins from source (the IBAN example, and the C kit's test
# guest, guest-sdk/c/test_guest.c): wit-bindgen's C bindings of
# wit/action.wit, the Sandbot C kit (guest-sdk/c/) and each source, compiled with
# Debian's clang for wasm32-wasi (packages clang, lld, wasi-libc,
# libclang-rt-14-dev-wasm32) as a reactor module, then made a component by
# `sandbot component new`. The results are committed (iban-c.wasm,
# guest-sdk/c/test-guest-c.wasm).
#
#   examples/plugins/iban-c/build.sh          rebuild and overwrite iban-c.wasm
#   examples/plugins/iban-c/build.sh --check  rebuild elsewhere, fail unless identical
#
# wit-bindgen-cli comes from crates.io (pinned; installed once under
# guest-sdk/.toolchain/). No debug info, fixed source paths: the same bytes
# from any clone.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
here="$repo/examples/plugins/iban-c"
mode=${1:-write}
wbg_version=0.61.1
wbg_root="$repo/guest-sdk/.toolchain/wit-bindgen"
wbg="$wbg_root/bin/wit-bindgen"
if ! "$wbg" --version 2>/dev/null | grep -q "$wbg_version"; then
  echo "installing wit-bindgen-cli $wbg_version (once)" >&2
  cargo install --quiet wit-bindgen-cli --version "$wbg_version" --locked --root "$wbg_root"
fi
for tool in clang wasm-ld-14; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32" >&2; exit 1; }
done
build=/tmp/sandbot-c-build
rm -rf "$build" && mkdir -p "$build/src" "$build/bindings" "$build/out"
cp "$repo/guest-sdk/c/sandbot.c" "$repo/guest-sdk/c/sandbot.h" "$repo/guest-sdk/c/test_guest.c" \
  "$here/iban.c" "$build/src/"
"$wbg" c "$repo/wit" --world action --out-dir "$build/bindings" >/dev/null 2>&1
(cd "$repo" && cargo build --quiet -p sandbot)
# name  source  committed artifact
plugins=(
  "iban-c      iban.c        examples/plugins/iban-c/iban-c.wasm"
  "test-guest  test_guest.c  guest-sdk/c/test-guest-c.wasm"
)
failed=0
for line in "${plugins[@]}"; do
  read -r name source artifact <<<"$line"
  (cd "$build" && clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -g0 \
    -Wall -Wextra -Werror -Wno-unused-parameter \
    -Ibindings -Isrc bindings/action.c src/sandbot.c "src/$source" bindings/action_component_type.o \
    -Wl,--strip-debug -o "out/$name.core.wasm")
  out="$repo/$artifact"
  [ "$mode" = --check ] && out="$build/out/$name.wasm"
  "$repo/target/debug/sandbot" component new "$build/out/$name.core.wasm" -o "$out"
  if [ "$mode" = --check ]; then
    if cmp -s "$out" "$repo/$artifact"; then
      echo "$artifact: identical ($(wc -c <"$out") bytes)" >&2
    else
      echo "$artifact differs from a rebuild of its sources: run examples/plugins/iban-c/build.sh and commit it" >&2
      failed=1
    fi
  else
    echo "wrote $artifact ($(wc -c <"$out") bytes)" >&2
  fi
done
exit $failed
