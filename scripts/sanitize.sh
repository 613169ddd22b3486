#!/usr/bin/env bash
# Runs the tests again in sanitizer builds (issue 13, case 10). Two trees:
# - build-asan/ (ASan + UBSan): every host target instrumented, the plugin
#   binary included, so the end-to-end tests drive a sanitized s2z-kata;
# - build-tsan/ (TSan): the agent's unit tests (the instance state machine,
#   its timers, the wake path and the guest channel on several threads).
# Any ASan, LSan, UBSan or TSan report fails the test that caused it; the
# suppressions are in tests/sanitizers/, each with its reason.
#
# Usage: scripts/sanitize.sh [--ctest] [asan|tsan]...   (default: both)
#   full run: ASan+UBSan over the ctest labels unit and integration (a whole
#             second build, ~28 min on 2 cores, then ~8 min of tests), TSan
#             over agent_unit_tests.
#   --ctest   as the ctest sanitizer_smoke runs it in CI: skipped (exit 77)
#             unless CI=true or S2Z_SANITIZE_SMOKE=1, and bounded to fit the
#             CI budget: both trees build only the layers below the driver
#             (agent, vmm, bpf, image, guestlink, common) and run their unit
#             tests.
# Env: S2Z_JOBS (build jobs). Needs root for the integration label, and the
# guest caches scripts/test.sh makes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
jobs="${S2Z_JOBS:-$(nproc)}"
supp="$repo/tests/sanitizers"

smoke=0
if [ "${1:-}" = "--ctest" ]; then
  shift
  smoke=1
  if [ "${CI:-}" != "true" ] && [ "${S2Z_SANITIZE_SMOKE:-}" != "1" ]; then
    echo "sanitizer_smoke: skipped (runs in CI, or with S2Z_SANITIZE_SMOKE=1; scripts/sanitize.sh runs the whole suite)"
    exit 77
  fi
fi
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(asan tsan)

# The unit tests of the layers below the driver: what CI can afford to build twice more.
smoke_asan_tests=(agent_unit_tests vmm_unit_tests guestlink_tests guest_agent_unit_tests bpf_prog_tests)
smoke_asan_ctest='^(agent_unit_tests|vmm_unit_tests|guestlink_tests|guest_agent_unit|bpf_prog_tests)$'

# -O1 -g1: the sanitizers' usual optimisation; line tables for the reports
# at a fraction of full debug info's compile time.
configure() {
  local dir=$1 sanitizers=$2
  cmake -S "$repo" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DS2Z_SANITIZE="$sanitizers" -DS2Z_FUZZ_SMOKE=OFF \
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
      if [ $smoke -eq 1 ]; then
        ninja -C "$repo/build-asan" -j "$jobs" "${smoke_asan_tests[@]}"
        (cd "$repo/build-asan" && ctest --output-on-failure --timeout 600 -R "$smoke_asan_ctest") || status=1
      else
        ninja -C "$repo/build-asan" -j "$jobs"
        (cd "$repo/build-asan" && ctest --output-on-failure --timeout 900 -L 'unit|integration') || status=1
      fi
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
