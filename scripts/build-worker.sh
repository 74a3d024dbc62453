#!/usr/bin/env bash
# Build the Worker (Rust → WASM → build/worker/shim.mjs) with the project-local toolchain.
# Wrangler runs this as its [build] command; CALLPLANE_SKIP_BUILD=1 (set by scripts/worker-up.sh)
# serves what `make worker` already built.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CALLPLANE_ROOT"
if [ "${CALLPLANE_SKIP_BUILD:-0}" = "1" ] && [ -f build/worker/shim.mjs ]; then exit 0; fi
opt=()
if [ -z "${WASM_OPT_BIN:-}" ]; then opt=(--no-opt); fi
worker-build --release "${opt[@]}"
