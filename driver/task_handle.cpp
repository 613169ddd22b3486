#include "driver/task_handle.h"

namespace s2z::driver {

void TaskHandle::recordExit(const agent::ExitInfo& exit) {
  std::lock_guard lock(mu_);
  if (!exit_) exit_ = exit;
}

std::optional<agent::ExitInfo> TaskHandle::exit() const {
  std::lock_guard lock(mu_);
  return exit_;
}

}  // namespace s2z::driver
