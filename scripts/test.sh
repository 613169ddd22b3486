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
# In CI (CI=true) the ctest entry `sanitizers` builds the ASan+UBSan tree and
# runs the whole unit and integration suite in it, the plugin included
# (scripts/sanitize.sh). The integration label is then not run a second time
# in this plain tree: both runs would not fit CI's 60 minutes on 2 cores.
# The plain plugin still runs end to end in CI, in reliability_tests.
labels=()
if [ "${CI:-}" = "true" ]; then
  labels=(-LE '^integration$')
fi
# One at a time: the integration tests boot VMs under TCG on a 2-core
# machine; running them side by side would make each wait on the other.
ctest --output-on-failure --timeout 900 "${labels[@]}" "$@"
