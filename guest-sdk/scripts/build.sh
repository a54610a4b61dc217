#!/usr/bin/env bash
# Builds every guest, turns each into a component and writes the artifacts the
# host loads: guest-sdk/artifacts/*.wasm plus SHA256SUMS.
#
#   guest-sdk/scripts/build.sh          rebuild and overwrite the artifacts
#   guest-sdk/scripts/build.sh --check  rebuild elsewhere, fail if anything differs
#
# Reproducible: the sources are staged at one fixed path (cargo hashes the
# absolute path of path dependencies outside a workspace into symbol names),
# remaining paths are remapped, symbols stripped and versions pinned
# (Cargo.lock files, the Debian toolchain pins in toolchain.sh): a rebuild from
# any clone, in any folder, gives the same bytes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
sdk="$repo/guest-sdk"
mode=${1:-write}

# The host CLI does the componentizing (wit-component + the preview1 adapter)
# and the pre-initialization (wasmtime-wizer). Built without the embedded
# guests, which may not exist yet; kept aside so the normal build is untouched.
stage=/tmp/sandbot-guest-build
mkdir -p "$stage"
(cd "$repo" && cargo build --quiet -p sandbot --bin sandbot --no-default-features)
cp "$repo/target/debug/sandbot" "$stage/sandbot-tool"
sandbot="$stage/sandbot-tool"
# Put target/debug/sandbot back as users expect it (with the built-in guests),
# now, before the guest toolchain's environment is set. Removing it makes cargo
# copy the normal build back even when that build is fresh.
rm -f "$repo/target/debug/sandbot"
(cd "$repo" && cargo build --quiet -p sandbot --bin sandbot) ||
  echo "note: target/debug/sandbot was not rebuilt with its built-in guests" >&2

eval "$(SANDBOT_GUEST_TOOLCHAIN=${SANDBOT_GUEST_TOOLCHAIN:-auto} "$sdk/scripts/toolchain.sh")"
echo "guest toolchain: $SANDBOT_GUEST_ROUTE ($(${RUSTC:-rustc} --version))" >&2

rm -rf "$stage/src" && mkdir -p "$stage/src"
tar -C "$repo" --exclude=target --exclude=.toolchain --exclude=.cache --exclude=artifacts --exclude=vendor \
  -cf - wit guest-sdk examples/plugins | tar -C "$stage/src" -xf -

# lodash for the JS runner: from the npm registry, pinned and checked against
# its integrity hash; never committed.
lodash_version=4.17.21
lodash_integrity="sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg=="
cache="$sdk/.cache"
mkdir -p "$cache"
tgz="$cache/lodash-$lodash_version.tgz"
if [ ! -s "$tgz" ]; then
  (cd "$cache" && npm pack "lodash@$lodash_version" --silent >/dev/null)
fi
actual="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$actual" != "$lodash_integrity" ]; then
  echo "lodash $lodash_version: integrity mismatch ($actual)" >&2
  rm -f "$tgz"
  exit 1
fi
mkdir -p "$stage/src/guest-sdk/js-runner/vendor"
tar -xzf "$tgz" -O package/lodash.min.js >"$stage/src/guest-sdk/js-runner/vendor/lodash.min.js"

# Guests: "name  cargo-workspace  crate-artifact-name  [component-new flags]".
guests=(
  "test-guest   $stage/src/guest-sdk             test_guest"
  "js-runner    $stage/src/guest-sdk             js_runner    --pre-init"
  "api-action   $stage/src/guest-sdk             api_action"
  "iban-plugin  $stage/src/examples/plugins/iban  iban_plugin"
)

cargo_home=${CARGO_HOME:-$HOME/.cargo}
# Rust keeps locals in a stack in linear memory (1 MiB by default). Make it
# larger than the host's wasm stack limit (1 MiB), so unbounded recursion stops
# with a clean `stack_overflow` trap rather than running off the bottom of
# linear memory (an out-of-bounds access).
shadow_stack=$((8 << 20))
toolchain_root="$sdk/.toolchain/root"
export CARGO_TARGET_DIR="$stage/target"
export RUSTFLAGS="--remap-path-prefix=$stage/src=/sandbot --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$toolchain_root=/toolchain -C debuginfo=0 -C link-arg=-zstack-size=$shadow_stack"
unset CARGO_ENCODED_RUSTFLAGS
export SOURCE_DATE_EPOCH=0


out="$sdk/artifacts"
if [ "$mode" = --check ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

for line in "${guests[@]}"; do
  read -r name dir crate flags <<<"$line"
  echo "building $name" >&2
  # shellcheck disable=SC2086
  (cd "$dir" && cargo build --quiet --locked --release --target wasm32-wasip1 $SANDBOT_BUILD_STD -p "$name")
  # shellcheck disable=SC2086
  "$sandbot" component new ${flags:-} "$CARGO_TARGET_DIR/wasm32-wasip1/release/$crate.wasm" -o "$out/$name.wasm"
done
(cd "$out" && sha256sum ./*.wasm | sed 's| \./| |' > SHA256SUMS)

if [ "$mode" = --check ]; then
  if diff -u "$sdk/artifacts/SHA256SUMS" "$out/SHA256SUMS"; then
    echo "guest artifacts match their sources" >&2
  else
    echo "guest artifacts differ from a rebuild of their sources: run guest-sdk/scripts/build.sh and commit guest-sdk/artifacts/" >&2
    exit 1
  fi
else
  cat "$out/SHA256SUMS" >&2
fi
