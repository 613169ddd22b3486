#!/usr/bin/env bash
# The test command: installs every dependency, builds the plugin, the test
# guest and the tests, then runs them all with ctest (unit, BPF, contract and
# integration tests on the real kernel and real QEMU). Needs root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build="${S2Z_BUILD_DIR:-$repo/build}"

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: run as root (tests create network namespaces, taps, cgroups and load eBPF)" >&2
  exit 1
fi

"$repo/scripts/install-deps.sh"
"$repo/scripts/build.sh"
"$repo/scripts/build-guest.sh"

cd "$build"
# One at a time: the integration tests boot VMs under TCG on a 2-core
# machine and measure latencies; running them side by side would skew both.
ctest --output-on-failure --timeout 900 "$@"
