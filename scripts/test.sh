#!/usr/bin/env bash
# make test: install what is missing, then run every suite. Exits non-zero if any suite fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test || exit 1
source scripts/env.sh
failed=()
step() { # name command...
  local name="$1"; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then echo "=== $name: ok ($((SECONDS - t0)) s)"; else echo "=== $name: FAILED ($((SECONDS - t0)) s)"; failed+=("$name"); fi
}
# The Worker and the CLI first: some Rust integration tests (edge-agent relay) run against them.
step "build worker" bash scripts/build-worker.sh
step "build cli" cargo build -q -p callplane-cli
step "unit and Rust integration (cargo test --workspace)" cargo test --workspace
step "integration (wrangler dev)" node --test --test-concurrency=1 tests/integration/*.test.mjs
[ -f tests/cli/provision.sh ] && step "provisioning CLI end to end" bash tests/cli/provision.sh
[ -f tests/sip/run.sh ] && step "SIP end to end (Kamailio + sipp)" bash tests/sip/run.sh
if [ ${#failed[@]} -gt 0 ]; then
  echo "make test: FAILED: ${failed[*]}"
  exit 1
fi
echo "make test: all suites passed"
