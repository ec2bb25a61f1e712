#!/usr/bin/env bash
# Builds the browser bundle: the library compiled to wasm32 (WebGPU + CPU backends), bound with
# wasm-bindgen into www/pkg/ and shrunk with wasm-opt. Installs what is missing: the wasm32
# target, the wasm-bindgen CLI matching Cargo.lock (cargo install, minutes, once), and binaryen's
# wasm-opt: the native one (Debian's `binaryen`, installed with apt when run as root), else npm's
# JavaScript build (slower). Each step prints how long it took.
#   SKIP_WASM_OPT=1  skip wasm-opt (CI does: it saves time, the page works the same)
set -euo pipefail
cd "$(dirname "$0")/.."

timed() {
    local start=$SECONDS
    "$@"
    echo "  ($1 ${2:-}: $((SECONDS - start)) s)"
}

# The native wasm-opt if there is one (108 or later: Debian bookworm's), installing it when we
# can; else npm's, which runs under node.
native_wasm_opt() {
    command -v wasm-opt > /dev/null && [ "$(wasm-opt --version | awk '{print $3}')" -ge 108 ] 2> /dev/null
}
wasm_opt() {
    if ! native_wasm_opt && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "installing binaryen (wasm-opt) with apt" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen > /dev/null 2>&1 ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen > /dev/null; } ||
            true
    fi
    if native_wasm_opt; then
        echo wasm-opt
        return
    fi
    if [ ! -x node_modules/.bin/wasm-opt ]; then
        echo "installing binaryen (wasm-opt) from npm" >&2
        npm install --no-audit --no-fund --no-save binaryen@132 >&2
    fi
    echo node_modules/.bin/wasm-opt
}

if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    rustup target add wasm32-unknown-unknown
fi
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
    echo "installing wasm-bindgen-cli $version (once)"
    timed cargo install wasm-bindgen-cli --version "$version"
fi

timed cargo build --lib --release --target wasm32-unknown-unknown --no-default-features
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
rm -rf www/pkg
timed wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    "$target_dir/wasm32-unknown-unknown/release/bisenet.wasm"

if [ -z "${SKIP_WASM_OPT:-}" ]; then
    opt=$(wasm_opt)
    timed "$opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int \
        --enable-simd --enable-sign-ext --enable-mutable-globals \
        www/pkg/bisenet_bg.wasm -o www/pkg/bisenet_bg.wasm
fi
ls -l www/pkg/bisenet_bg.wasm
echo "gzipped: $(gzip -9 -c www/pkg/bisenet_bg.wasm | wc -c) bytes"
