#!/usr/bin/env bash
# Benchmark /health, /auth and /route on a local wrangler dev with the demo data; prints req/s,
# p50/p99 and each endpoint's ratio to /health from the same run. Also prints the WASM size.
#   bench/run.sh [seconds-per-endpoint=5] [concurrency=8]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
state="$PWD/bench/results/state"
port="${BENCH_PORT:-8811}"
rm -rf "$state"; mkdir -p "$state"
trap 'scripts/worker-down.sh "$state"' EXIT
scripts/worker-up.sh --port "$port" --state "$state" --demo >/dev/null
token=$(node -e 'const d=require(process.argv[1]); process.stdout.write(d.credentials["sip-edge"].token)' "$state/demo.json")
echo "WASM: $(stat -c %s build/index_bg.wasm) bytes, gzip -9 $(gzip -9c build/index_bg.wasm | wc -c) bytes"
node bench/load.mjs "http://127.0.0.1:$port" "$token" "$state/demo.json" "${1:-5}" "${2:-8}" | tee bench/results/latest.txt
