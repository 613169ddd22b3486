// Collects an instance's events (the agent's EventSink) so the benchmark can
// wait for "Sleeping"/"Woken" and read their annotations.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/instance.h"

namespace s2z::bench {

class EventLog {
 public:
  // The sink to hand to Agent::start; keeps a pointer to this log, which must
  // outlive the instance.
  agent::EventSink sink() {
    return [this](const agent::InstanceEvent& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
      cv_.notify_all();
    };
  }

  // Number of events so far: pass it to waitFor to wait only for later ones.
  size_t mark() const {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

  // The first event at index >= from whose message is `message`; nullopt on
  // timeout. Sets *next to the index after it.
  std::optional<agent::InstanceEvent> waitFor(const std::string& message, size_t from,
                                              std::chrono::milliseconds timeout,
                                              size_t* next = nullptr) {
    std::unique_lock lock(mutex_);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (size_t i = from;; ++i) {
      if (!cv_.wait_until(lock, deadline, [&] { return events_.size() > i; })) return std::nullopt;
      if (events_[i].message == message) {
        if (next) *next = i + 1;
        return events_[i];
      }
    }
  }

  std::vector<agent::InstanceEvent> all() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  mutable std::mutex mutex_;  // guards events_
  std::condition_variable cv_;
  std::vector<agent::InstanceEvent> events_;
};

}  // namespace s2z::bench
