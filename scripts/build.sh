#!/usr/bin/env bash
# Configures and builds everything into build/ (the plugin binary is build/driver/s2z-kata).
# Usage: scripts/build.sh [extra cmake args]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build="${S2Z_BUILD_DIR:-$repo/build}"
jobs="${S2Z_JOBS:-$(nproc)}"

cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
ninja -C "$build" -j "$jobs"
