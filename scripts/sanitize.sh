#!/usr/bin/env bash
# Runs the tests again in sanitizer builds (issue 13, case 10). Two trees:
# - build-asan/ (ASan + UBSan): every host target instrumented, the plugin
#   binary included, so the end-to-end tests drive a sanitized s2z-kata; the
#   whole unit and integration suite (ctest labels unit and integration) runs
#   in it;
# - build-tsan/ (TSan): the agent's unit tests (the instance state machine,
#   its timers, the wake path and the guest channel on several threads).
# Any ASan, LSan, UBSan or TSan report fails the test that caused it; the
# suppressions are in tests/sanitizers/, each with its reason.
#
# Usage: scripts/sanitize.sh [--ctest] [asan|tsan]...   (default: both)
#   --ctest   as the ctest entry `sanitizers` runs it: skipped (exit 77)
#             unless CI=true or S2Z_SANITIZE_CTEST=1, since it is a second
#             and a third build (~16 min on 2 cores) and ~10 min of tests.
# Env: S2Z_JOBS (build jobs). Needs root for the integration label, and the
# guest caches scripts/test.sh makes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
jobs="${S2Z_JOBS:-$(nproc)}"
supp="$repo/tests/sanitizers"

if [ "${1:-}" = "--ctest" ]; then
  shift
  if [ "${CI:-}" != "true" ] && [ "${S2Z_SANITIZE_CTEST:-}" != "1" ]; then
    echo "sanitizers: skipped (runs in CI, or with S2Z_SANITIZE_CTEST=1, or as scripts/sanitize.sh)"
    exit 77
  fi
fi
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(asan tsan)

# -O1 -g1: the sanitizers' usual optimisation; line tables for the reports
# at a fraction of full debug info's compile time.
# Every module but reliability (its suite is not in the sanitized run) and
# bench: the benchmarks are not run in CI, and their one unit suite (stats)
# runs in the plain tree; that saves ~45 s of CI's ASan build.
modules="common;proto;guestlink;bpf;vmm;cloud_hypervisor;image;agent;driver;standin;guest;integration"
configure() {
  local dir=$1 sanitizers=$2
  cmake -S "$repo" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DS2Z_SANITIZE="$sanitizers" -DS2Z_FUZZ_SMOKE=OFF "-DS2Z_MODULES=$modules" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1" >/dev/null
}

# The plugin's children (QEMU, helpers) are not instrumented; the options
# reach a sanitized plugin through the stand-in, which passes its
# environment on as a Nomad client does.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"

status=0
for kind in "${kinds[@]}"; do
  case "$kind" in
    asan)
      configure "$repo/build-asan" "address,undefined"
      ninja -C "$repo/build-asan" -j "$jobs"
      (cd "$repo/build-asan" && ctest --output-on-failure --timeout 900 -L 'unit|integration') || status=1
      ;;
    tsan)
      configure "$repo/build-tsan" "thread"
      ninja -C "$repo/build-tsan" -j "$jobs" agent_unit_tests
      # Without ASLR: gcc 12's TSan has a fixed shadow layout that clashes
      # with vm.mmap_rnd_bits above 28 ("unexpected memory mapping").
      (cd "$repo/build-tsan/tests/agent" && setarch "$(uname -m)" -R ./agent_unit_tests) || status=1
      ;;
    *) echo "sanitize.sh: unknown kind '$kind' (asan, tsan)" >&2; exit 2 ;;
  esac
done
echo "sanitize: ${kinds[*]}: $([ $status -eq 0 ] && echo "no reports" || echo "REPORTS OR FAILURES, see above")"
exit $status
