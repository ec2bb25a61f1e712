#!/usr/bin/env bash
# Builds the browser bundle: the library compiled to wasm32 (WebGPU + CPU backends),
# bound with wasm-bindgen into www/pkg/ and optionally shrunk with wasm-opt. Installs what is missing (the wasm32 target, the
# wasm-bindgen CLI matching Cargo.lock, binaryen's wasm-opt from npm).
#   SKIP_WASM_OPT=1  skip wasm-opt (CI does: it saves minutes, the page works the same)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    rustup target add wasm32-unknown-unknown
fi
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
    echo "installing wasm-bindgen-cli $version"
    cargo install wasm-bindgen-cli --version "$version"
fi

cargo build --lib --release --target wasm32-unknown-unknown --no-default-features
rm -rf www/pkg
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    target/wasm32-unknown-unknown/release/bisenet.wasm

if [ -z "${SKIP_WASM_OPT:-}" ]; then
    if [ ! -x node_modules/.bin/wasm-opt ]; then
        npm install --no-audit --no-fund --no-save binaryen@132
    fi
    node_modules/.bin/wasm-opt -O3 --enable-bulk-memory --enable-nontrapping-float-to-int \
        --enable-simd --enable-sign-ext --enable-mutable-globals \
        www/pkg/bisenet_bg.wasm -o www/pkg/bisenet_bg.wasm
fi
ls -l www/pkg/bisenet_bg.wasm
echo "gzipped: $(gzip -9 -c www/pkg/bisenet_bg.wasm | wc -c) bytes"
