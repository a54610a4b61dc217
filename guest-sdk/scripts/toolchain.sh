#!/usr/bin/env bash
# Prints the environment (as `export` lines) for building wasm32-wasip1 guests.
#
# Route 1: rustup already has the wasm32-wasip1 target -> use it as is.
# Route 2: Debian's rustc-web (1.96, with its std sources) unpacked into
#          guest-sdk/.toolchain/ (git-ignored) and used with -Zbuild-std.
# Never calls `rustup target add`: on machines without internet it hangs.
# Set SANDBOT_GUEST_TOOLCHAIN=debian to force route 2 (CI does, so that the
# committed artifacts are reproduced by the very same compiler).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root="$here/.toolchain/root"

# Pinned versions; the candidate version is the fallback when a pin left the mirror.
pkgs=(
  "rustc-web=1.96.0+dfsg1-1~deb12u2"
  "libstd-rust-web-1.96=1.96.0+dfsg1-1~deb12u2"
  "libstd-rust-web-dev=1.96.0+dfsg1-1~deb12u2"
  "rust-web-src=1.96.0+dfsg1-1~deb12u2"
  "libllvm22=1:22.1.8-1~deb12u1"
  "lld-22=1:22.1.8-1~deb12u1"
  "wasi-libc=0.0~git20220510.9886d3d-2"
)

use_rustup() {
  [ "${SANDBOT_GUEST_TOOLCHAIN:-auto}" != debian ] &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1
}

fetch_debian() {
  [ -x "$root/usr/bin/rustc" ] && [ -f "$root/.complete" ] && return 0
  echo "guest toolchain: fetching Debian rustc-web into $root" >&2
  local dl="$here/.toolchain/debs"
  rm -rf "$root" && mkdir -p "$dl" "$root"
  if [ ! -s /var/lib/apt/lists/lock ] && ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    apt-get update >&2
  fi
  for p in "${pkgs[@]}"; do
    (cd "$dl" && apt-get download "$p" >&2) || (cd "$dl" && apt-get download "${p%%=*}" >&2)
  done
  for f in "$dl"/*.deb; do dpkg -x "$f" "$root"; done
  local sc="$root/usr/lib/rustlib/wasm32-wasip1/lib/self-contained"
  mkdir -p "$sc"
  cp "$root"/usr/lib/wasm32-wasi/*.o "$root"/usr/lib/wasm32-wasi/*.a "$sc/"
  # rustc invokes `rust-lld -flavor wasm`; lld is a multi-call binary that serves it.
  ln -sf ../lib/llvm-22/bin/lld "$root/usr/bin/rust-lld"
  touch "$root/.complete"
}

if use_rustup; then
  echo "export SANDBOT_GUEST_ROUTE=rustup"
  echo "export SANDBOT_BUILD_STD="
else
  fetch_debian
  echo "export SANDBOT_GUEST_ROUTE=debian"
  echo "export LD_LIBRARY_PATH='$root/usr/lib/x86_64-linux-gnu:$root/usr/lib/llvm-22/lib'"
  echo "export RUSTC='$root/usr/bin/rustc'"
  echo "export RUSTC_BOOTSTRAP=1"
  echo "export PATH='$root/usr/bin':\"\$PATH\""
  echo "export SANDBOT_BUILD_STD='-Zbuild-std=std,panic_abort'"
fi
