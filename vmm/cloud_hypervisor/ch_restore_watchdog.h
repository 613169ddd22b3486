// The restore watchdog of the Cloud Hypervisor backend (VmConfig::restoreTimeout):
// one deadline for a whole restore, from the VMM start (or the standby) through
// vm.restore, the copy retry and vm.resume. Each step gets only what is left of
// it, so a VMM that hangs, or was stopped by a signal, cannot hold the wake up
// longer than the budget; the caller kills that VMM and cold boots.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace s2z::vmm::ch {

class RestoreWatchdog {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RestoreWatchdog(std::chrono::milliseconds budget)
      : budget_(budget), deadline_(Clock::now() + budget) {}

  Clock::time_point deadline() const { return deadline_; }
  bool expired() const { return Clock::now() >= deadline_; }

  // What is left for the next step; at least 1 ms, so a step begun at the
  // deadline still ends in kTimeout instead of blocking or passing 0 ("no
  // limit") down to a poll.
  std::chrono::milliseconds left() const {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    return std::max(ms, std::chrono::milliseconds(1));
  }

  // The error for a step that failed: once the deadline has passed or the
  // step itself timed out (it only ever had what was left), kTimeout naming
  // the step still pending, e.g. "restore watchdog: 300 ms ran out with
  // vm.restore still pending: PUT vm.restore: timed out waiting for the
  // response"; any other failure within the budget is returned as it is.
  Error verdict(const Error& stepError, std::string_view pending) const {
    if (stepError.code != ErrorCode::kTimeout && !expired()) return stepError;
    return Error{ErrorCode::kTimeout, stepError.errnum,
                 "restore watchdog: " + std::to_string(budget_.count()) + " ms ran out with " +
                     std::string(pending) + " still pending: " + stepError.message};
  }

 private:
  std::chrono::milliseconds budget_;
  Clock::time_point deadline_;
};

}  // namespace s2z::vmm::ch
