#!/usr/bin/env bash
# Serve the built Worker under wrangler dev (workerd) on 127.0.0.1 with its own local D1/DO state.
#   scripts/worker-up.sh --port 8790 --state DIR [--demo] [--var KEY:VALUE ...]
# Applies the D1 migrations to DIR, starts wrangler in its own process group (pid in DIR/worker.pid),
# waits (bounded) until /health answers. Stop with scripts/worker-down.sh DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
port=8787 state="" demo=0 vars=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --state) state="$2"; shift 2 ;;
    --demo) demo=1; shift ;;
    --var) vars+=(--var "$2"); shift 2 ;;
    *) echo "worker-up: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$state" ] || { echo "worker-up: --state DIR is required" >&2; exit 2; }
[ -f build/worker/shim.mjs ] || { echo "worker-up: build the Worker first (make worker)" >&2; exit 1; }
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "worker-up: something already listens on 127.0.0.1:$port" >&2; exit 1
fi
mkdir -p "$state"
state="$(cd "$state" && pwd)"
wrangler d1 migrations apply callplane --local --persist-to "$state" >"$state/migrations.log" 2>&1 \
  || { cat "$state/migrations.log" >&2; exit 1; }
if [ "$demo" = 1 ]; then
  cargo run -q -p callplane-cli -- --local --persist-to "$state" demo >"$state/demo.json"
fi
secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CALLPLANE_SKIP_BUILD=1 setsid wrangler dev --ip 127.0.0.1 --port "$port" --persist-to "$state" \
  --var "NONCE_SECRET:$secret" "${vars[@]}" --show-interactive-dev-session=false \
  >"$state/wrangler.log" 2>&1 < /dev/null &
echo $! > "$state/worker.pid"
for _ in $(seq 1 120); do
  if curl -fsS -m 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
    echo "worker up on http://127.0.0.1:$port (state $state, pid $(cat "$state/worker.pid"))"
    exit 0
  fi
  if ! kill -0 "$(cat "$state/worker.pid")" 2>/dev/null; then break; fi
  sleep 0.5
done
echo "worker-up: /health did not answer on port $port; log:" >&2
tail -40 "$state/wrangler.log" >&2
scripts/worker-down.sh "$state" || true
exit 1
