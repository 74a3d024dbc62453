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
media=$(node -e 'const d=require(process.argv[1]); process.stdout.write(d.credentials["media-node"].token)' "$state/demo.json")
account=$(node -e 'const d=require(process.argv[1]); process.stdout.write(d.account.id)' "$state/demo.json")
# A flow whose every step is a real one: a menu that loops on itself (input-driven, so valid).
printf '%s' '{"version":1,"start":"menu","nodes":{"menu":{"type":"gather","prompt":{"tts":{"text":"Press a key."}},"branches":{"1":"menu"},"default":"menu","fallback":"bye"},"bye":{"type":"hangup"}}}' > "$state/bench-flow.json"
flow=$(./target/debug/callplane-admin --local --persist-to "$state" flow create --account "$account" --name bench --file "$state/bench-flow.json" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).id))')
export BENCH_MEDIA_TOKEN="$media" BENCH_FLOW_ID="$flow"
echo "WASM: $(stat -c %s build/index_bg.wasm) bytes, gzip -9 $(gzip -9c build/index_bg.wasm | wc -c) bytes"
node bench/load.mjs "http://127.0.0.1:$port" "$token" "$state/demo.json" "${1:-5}" "${2:-8}" | tee bench/results/latest.txt
