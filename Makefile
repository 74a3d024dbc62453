# callplane — the two commands: `make dev` and `make test`. Everything else is a building block.
SHELL := /bin/bash
.PHONY: dev test bootstrap worker cli unit integration cli-e2e sip bench clippy

dev:            ## build, migrate local D1, load demo data, serve on 127.0.0.1:8787
	@bash scripts/dev.sh

test:           ## install what is missing, then run every test suite
	@bash scripts/test.sh

bootstrap:
	@bash scripts/bootstrap.sh test

worker:         ## build the Worker (Rust → WASM) into build/
	@bash scripts/build-worker.sh

cli:
	@source scripts/env.sh && cargo build -q -p callplane-cli

unit:
	@source scripts/env.sh && cargo test --workspace

integration: worker cli
	@source scripts/env.sh && node --test --test-concurrency=1 tests/integration/*.test.mjs

cli-e2e: cli
	@bash tests/cli/provision.sh

sip: worker cli
	@bash tests/sip/run.sh

bench: worker cli
	@bash bench/run.sh

clippy:
	@source scripts/env.sh && cargo clippy --workspace --all-targets -- -D warnings
