#!/usr/bin/env bash
# Chats with an example bot in the terminal, with the small backend its
# actions call started in the background (and stopped on exit).
#   examples/bots/run.sh meetups                 # interactive
#   examples/bots/run.sh shop --script FILE      # replay a script, JSON lines out
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bot=${1:?usage: examples/bots/run.sh meetups|shop [sandbot chat flags]}
shift
cargo build --quiet --manifest-path "$repo/Cargo.toml" -p sandbot -p sandbot-example-backend
target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if ! (exec 3<>/dev/tcp/127.0.0.1/8787) 2>/dev/null; then
  "$target/debug/sandbot-example-backend" 127.0.0.1:8787 2>/dev/null &
  backend=$!
  trap 'kill $backend 2>/dev/null || true' EXIT
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8787) 2>/dev/null && break; sleep 0.1; done
fi
# The backend is on loopback: the egress policy refuses it unless allowed by name.
"$target/debug/sandbot" chat "$repo/examples/bots/$bot" --allow-host http://127.0.0.1:8787 "$@"
