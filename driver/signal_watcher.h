// Signals for the plugin process (protocol doc §1.7): SIGINT is counted and
// logged, never fatal (a Ctrl-C to the agent's process group must not kill
// the plugin); SIGTERM asks for a clean shutdown. Uses handlers (not blocked
// masks or SIG_IGN) because both are inherited by VMM child processes, while
// handlers are reset on exec.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::driver {

class SignalWatcher {
 public:
  // Installs handlers for SIGINT, SIGTERM and SIGPIPE (a no-op: a closed
  // pipe shows as EPIPE). onTerminate runs on the watcher's thread. At most
  // one watcher per process (the handler needs one process-wide fd).
  static Result<std::unique_ptr<SignalWatcher>> install(std::function<void()> onTerminate);
  // Restores default handlers and joins the thread.
  ~SignalWatcher();

  unsigned interrupts() const { return interrupts_.load(); }

 private:
  SignalWatcher(UniqueFd readEnd, UniqueFd writeEnd, std::function<void()> onTerminate);
  void run();

  UniqueFd readEnd_, writeEnd_;
  std::function<void()> onTerminate_;
  std::atomic<unsigned> interrupts_{0};
  std::thread thread_;
};

}  // namespace s2z::driver
