#!/usr/bin/env bash
# The project's test command: formatting, lints (native and wasm32), the Rust tests, then the
# browser tests of the demo page in headless Chromium. Works on a fresh machine: it installs
# what is missing (the wasm32 target, Chromium and ffmpeg from apt when run as root, the
# wasm-bindgen CLI, npm packages). CI=true skips wasm-opt (minutes of CPU, same page). On a
# clone without ../shared/data (the project's CamVid copy and sample media) the tests that
# need it are reported as ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    rustup target add wasm32-unknown-unknown
fi

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release --lib --target wasm32-unknown-unknown --no-default-features -- -D warnings
cargo test --release

# What the Rust tests could not check here (they are listed as ignored).
if [ ! -d ../shared/data ]; then
    echo "note: ../shared/data is absent: the tests that need it were ignored" >&2
fi
# The PyTorch parity and ONNX export tests are `#[ignore]`d (they need PyTorch): run here where
# the Python they use (BISENET_PYTHON, else python3) has the packages.
python=${BISENET_PYTHON:-python3}
if "$python" -c 'import torch, safetensors' 2> /dev/null; then
    cargo test --release --test import full_width_parity_with_pytorch -- --ignored
else
    echo "note: $python lacks torch or safetensors: tests/import.rs's full-width PyTorch" \
        "parity test was not run" >&2
fi
if "$python" -c 'import torch, onnx, onnxruntime, safetensors' 2> /dev/null; then
    cargo test --release --test onnx_export -- --ignored
else
    echo "note: $python lacks torch, onnx, onnxruntime or safetensors: tests/onnx_export.rs" \
        "was not run" >&2
fi

# Browser tests: the page, the wasm module and the native CLI they are compared with.
missing=()
command -v chromium > /dev/null || missing+=(chromium)
command -v ffmpeg > /dev/null || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
    else
        echo "install ${missing[*]} to run the browser tests" >&2
        exit 1
    fi
fi
npm ci --no-audit --no-fund
if [ "${CI:-}" = true ]; then export SKIP_WASM_OPT=1; fi
bash scripts/build-web.sh
node --test tests/browser/
