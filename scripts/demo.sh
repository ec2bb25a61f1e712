#!/usr/bin/env bash
# The main job: build the browser bundle and serve the demo on http://127.0.0.1:${PORT:-8000}.
# The first run installs wasm-bindgen-cli and compiles the wasm module (minutes: see
# build-web.sh's timings); later runs rebuild only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-web.sh
echo "built in $SECONDS s"
port=${PORT:-8000}
echo "open http://127.0.0.1:$port/ (Ctrl-C to stop)"
exec python3 -m http.server "$port" --bind 127.0.0.1
