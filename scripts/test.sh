#!/usr/bin/env bash
# The project's test command: formatting, lints (native and wasm32), then every test.
# Works on a fresh machine: it installs the wasm32 target when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    rustup target add wasm32-unknown-unknown
fi

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release --lib --target wasm32-unknown-unknown --no-default-features -- -D warnings
cargo test --release
