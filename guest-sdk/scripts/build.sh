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

# The host CLI does the componentizing (wit-component + the preview1 adapter).
(cd "$repo" && cargo build --quiet -p sandbot --bin sandbot)
sandbot="$repo/target/debug/sandbot"

eval "$(SANDBOT_GUEST_TOOLCHAIN=${SANDBOT_GUEST_TOOLCHAIN:-auto} "$sdk/scripts/toolchain.sh")"
echo "guest toolchain: $SANDBOT_GUEST_ROUTE ($(${RUSTC:-rustc} --version))" >&2

stage=/tmp/sandbot-guest-build
rm -rf "$stage/src" && mkdir -p "$stage/src"
tar -C "$repo" --exclude=target --exclude=.toolchain --exclude=artifacts -cf - wit guest-sdk examples/plugins |
  tar -C "$stage/src" -xf -

# Guests: "name  cargo-workspace  crate-artifact-name".
guests=(
  "test-guest   $stage/src/guest-sdk             test_guest"
  "iban-plugin  $stage/src/examples/plugins/iban  iban_plugin"
)

cargo_home=${CARGO_HOME:-$HOME/.cargo}
toolchain_root="$sdk/.toolchain/root"
export CARGO_TARGET_DIR="$stage/target"
export RUSTFLAGS="--remap-path-prefix=$stage/src=/sandbot --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$toolchain_root=/toolchain -C debuginfo=0"
unset CARGO_ENCODED_RUSTFLAGS
export SOURCE_DATE_EPOCH=0


out="$sdk/artifacts"
if [ "$mode" = --check ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

for line in "${guests[@]}"; do
  read -r name dir crate <<<"$line"
  echo "building $name" >&2
  # shellcheck disable=SC2086
  (cd "$dir" && cargo build --quiet --locked --release --target wasm32-wasip1 $SANDBOT_BUILD_STD)
  "$sandbot" component new "$CARGO_TARGET_DIR/wasm32-wasip1/release/$crate.wasm" -o "$out/$name.wasm"
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
