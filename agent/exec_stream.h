// What one exec'd command sends back, queued between the guest channel's
// reader thread (push) and whoever drives the exec session (pop): output
// chunks in order, then the exit, or an end without one (the task exited,
// the channel was closed for good).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "agent/instance.h"
#include "common/result.h"

namespace s2z::agent {

class ExecStream {
 public:
  void push(ExecEvent event) {
    {
      std::lock_guard lock(mutex_);
      if (ended_) return;
      if (event.kind == ExecEvent::Kind::kExited) ended_ = true;
      events_.push_back(std::move(event));
    }
    cv_.notify_all();
  }

  // No exit will come: next() fails with `why` once the queue is empty.
  void abandon(const std::string& why) {
    {
      std::lock_guard lock(mutex_);
      if (ended_) return;
      ended_ = true;
      abandoned_ = why;
    }
    cv_.notify_all();
  }

  // The next event; kTimeout when none came in time, kUnavailable after
  // abandon(), kFailedPrecondition after the exit was taken.
  Result<ExecEvent> next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [this] { return !events_.empty() || ended_; })) {
      return makeError(ErrorCode::kTimeout, "no output");
    }
    if (events_.empty()) {
      if (abandoned_) return makeError(ErrorCode::kUnavailable, *abandoned_);
      return makeError(ErrorCode::kFailedPrecondition, "the command has exited");
    }
    ExecEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<ExecEvent> events_;
  bool ended_ = false;  // the exit is queued, or abandoned
  std::optional<std::string> abandoned_;
};

}  // namespace s2z::agent
