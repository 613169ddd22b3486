#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang + ASan + UBSan) into build-fuzz/
# and runs each: first a replay of its seed corpus (fuzz/corpus/<target>/,
# regression inputs included), then fuzzing for N seconds. Fails on any
# crash, leak, UB report, timeout or out-of-memory. One summary line per
# target, then "fuzz: N passed, N failed".
#
# Usage: scripts/fuzz.sh [--ctest] [seconds] [target...]
#   seconds   per target (default $S2Z_FUZZ_SECONDS or 60; 0: replay only)
#   target    plugin_config task_config instance_record ch_http guestlink_frame
#             snapshot_manifest wake_record
#   --ctest   as the ctest fuzz_smoke runs it: skipped (exit 77) unless
#             CI=true or S2Z_FUZZ=1, so a developer's plain `ctest` stays fast
# Env: S2Z_FUZZ_BUILD_DIR (default build-fuzz), S2Z_JOBS (build jobs),
# S2Z_FUZZ_FLAGS (more libFuzzer flags, e.g. "-jobs=2" or "-dict=…").
# New corpus entries go to build-fuzz/corpus/<target>/, crash inputs to
# build-fuzz/artifacts/<target>/; the repo's corpus is only read.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build="${S2Z_FUZZ_BUILD_DIR:-$repo/build-fuzz}"
jobs="${S2Z_JOBS:-$(nproc)}"
all_targets=(plugin_config task_config instance_record ch_http guestlink_frame snapshot_manifest wake_record)

if [ "${1:-}" = "--ctest" ]; then
  shift
  if [ "${CI:-}" != "true" ] && [ "${S2Z_FUZZ:-}" != "1" ]; then
    echo "fuzz_smoke: skipped (runs in CI, or with S2Z_FUZZ=1; scripts/fuzz.sh runs it by hand)"
    exit 77
  fi
fi
seconds="${S2Z_FUZZ_SECONDS:-60}"
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

for tool in clang clang++ cmake ninja; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }
done
rt=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
if [ ! -f "$rt" ] && ! ls "$(clang -print-resource-dir)"/lib/linux/libclang_rt.fuzzer*.a >/dev/null 2>&1; then
  echo "fuzz: libFuzzer runtime missing: apt-get install libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev" >&2
  exit 1
fi

start=$(date +%s)
cmake -S "$repo/fuzz" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=Fuzz >/dev/null
ninja -C "$build" -j "$jobs" $(printf '%s_fuzz ' "${targets[@]}")
echo "fuzz: build took $(( $(date +%s) - start )) s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# A single allocation over 256 MiB, 1 GiB resident or 10 s on one input is a
# finding: every decoder here has limits far below that.
limits=(-malloc_limit_mb=256 -rss_limit_mb=1024 -timeout=10 ${S2Z_FUZZ_FLAGS:-})

# One target: replay, then fuzz; prints its summary line and exits 0 (PASS)
# or 1 (FAIL). Targets run side by side, one per build job: each libFuzzer
# process uses one core, and each still gets its full $seconds.
run_target() {
  local t=$1
  local bin="$build/${t}_fuzz"
  local seeds="$repo/fuzz/corpus/$t"
  local work="$build/corpus/$t"
  local artifacts="$build/artifacts/$t/"
  local log="$build/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  local nseeds status=ok why="" execs=0 rate=0
  nseeds=$(find "$seeds" -type f | wc -l)
  # 1. Replay: every seed and regression input, once.
  if ! "$bin" "${limits[@]}" -runs=0 -artifact_prefix="$artifacts" "$seeds" >"$log" 2>&1; then
    status=FAIL why="a seed crashes (replay)"
  fi
  # 2. Fuzz for $seconds, starting from the seeds and earlier runs' corpus.
  if [ "$status" = ok ] && [ "$seconds" -gt 0 ]; then
    if ! "$bin" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$work" "$seeds" >>"$log" 2>&1; then
      status=FAIL why="crash found"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  fi
  local corpus line
  corpus=$(find "$work" -type f | wc -l)
  if [ "$status" = ok ]; then
    line="fuzz: $t: PASS  $nseeds seeds replayed"
    [ "$seconds" -eq 0 ] || line+=", ${execs:-0} execs in ${seconds} s (${rate:-0}/s), work corpus $corpus"
    echo "$line"
    return 0
  fi
  local crash
  crash=$(ls -t "$artifacts" 2>/dev/null | head -1)
  echo "fuzz: $t: FAIL  $why; input ${artifacts}${crash:-?}; log $log"
  grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|FUZZ_CHECK' "$log" | sed 's/^/  /' || true
  return 1
}

results="$build/logs/results"
rm -rf "$results"
mkdir -p "$results"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  ( if run_target "$t" >"$results/$t"; then echo PASS >"$results/$t.status"; else echo FAIL >"$results/$t.status"; fi
    cat "$results/$t" ) &
done
wait

passed=0 failed=0 summary=()
for t in "${targets[@]}"; do
  summary+=("$(head -1 "$results/$t")")
  if [ "$(cat "$results/$t.status")" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

echo
printf '%s\n' "${summary[@]}"
echo "fuzz: ${passed} passed, ${failed} failed ($(( $(date +%s) - start )) s in all)"
[ "$failed" -eq 0 ]
