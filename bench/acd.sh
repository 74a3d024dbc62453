#!/usr/bin/env bash
# ACD offers per second through one account's Durable Object (200 agents, 1,000 waiting
# callers) and /health from the same run, on a fresh local wrangler dev (see bench/acd.mjs).
#   bench/acd.sh [seconds-per-phase=10] [concurrency=8]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
state="$PWD/bench/results/acd-state"
port="${BENCH_PORT:-8811}"
rm -rf "$state"; mkdir -p "$state"
trap 'scripts/worker-down.sh "$state"' EXIT
scripts/worker-up.sh --port "$port" --state "$state" >/dev/null
echo "WASM: $(stat -c %s build/index_bg.wasm) bytes"
node bench/acd.mjs "http://127.0.0.1:$port" "$state" "${1:-10}" "${2:-8}" | tee bench/results/acd-latest.txt
