#!/usr/bin/env bash
# Bundles the studio's editor (CodeMirror 6 from the pinned packages in
# package-lock.json) into runtime/src/studio/assets/editor.js, which is
# committed: the server embeds it and needs no Node. `--check` rebuilds into
# a temporary file and fails unless it is byte-for-byte the committed one.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts >/dev/null
out=../src/studio/assets/editor.js
target=$out
if [ "${1:-}" = "--check" ]; then target=$(mktemp); fi
node node_modules/esbuild/bin/esbuild src/editor.js --bundle --format=iife --global-name=SandbotEditor \
  --minify --legal-comments=none --target=es2020 --charset=utf8 --outfile="$target" --log-level=warning
if [ "${1:-}" = "--check" ]; then
  if cmp -s "$target" "$out"; then echo "editor bundle: identical ($(wc -c <"$out") bytes)"; rm -f "$target"
  else echo "editor bundle differs from the committed $out: run runtime/studio-ui/build.sh"; rm -f "$target"; exit 1; fi
else
  echo "wrote $out ($(wc -c <"$out") bytes)"
fi
