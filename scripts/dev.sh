#!/usr/bin/env bash
# make dev: build, apply D1 migrations locally, load demo data, serve on 127.0.0.1:8787.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
source scripts/env.sh
bash scripts/build-worker.sh
cargo build -q -p callplane-cli
state=.wrangler/state
wrangler d1 migrations apply callplane --local --persist-to "$state"
./target/debug/callplane-admin --local --persist-to "$state" demo > .wrangler/demo.json
echo "demo data loaded (credentials and ids: .wrangler/demo.json, docs/provisioning.md)"
exec env CALLPLANE_SKIP_BUILD=1 wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to "$state"
