#!/usr/bin/env bash
# Builds the browser bundle: the library compiled to wasm32 (WebGPU + CPU backends), bound with
# wasm-bindgen into www/pkg/ and shrunk with wasm-opt. Installs what is missing: the wasm32
# target, the wasm-bindgen CLI matching Cargo.lock (cargo install, minutes, once), and binaryen's
# wasm-opt (npm's build, unless a native binaryen 132 or later is on PATH). Each step prints how
# long it took.
#   SKIP_WASM_OPT=1  skip wasm-opt (CI does: it saves time, the page works the same)
set -euo pipefail
cd "$(dirname "$0")/.."

timed() {
    local start=$SECONDS
    "$@"
    echo "  ($1 ${2:-}: $((SECONDS - start)) s)"
}

# A wasm-opt on PATH when it is binaryen 132 or later (Debian bookworm's 108 cannot parse this
# module), else npm's build of binaryen 132, which runs under node.
wasm_opt() {
    if command -v wasm-opt > /dev/null &&
        [ "$(wasm-opt --version | awk '{print $3}')" -ge 132 ] 2> /dev/null; then
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
    # --force: cargo's own record may say it is installed when the binary is gone.
    timed cargo install --locked --force wasm-bindgen-cli --version "$version"
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
