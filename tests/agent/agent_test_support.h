// Test harness around ScaleToZeroAgent with fakes: a temp state dir, the fake
// world, kernel and network, an event log, and polling helpers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/scale_to_zero_agent.h"
#include "tests/agent/fakes.h"

namespace s2z::agent::testing {

// Polls pred every 5 ms until true or timeout; returns the last value.
inline bool waitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

class EventLog {
 public:
  EventSink sink() {
    return [this](const InstanceEvent& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
    };
  }
  std::vector<InstanceEvent> all() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  // Events whose message starts with prefix.
  std::vector<InstanceEvent> find(const std::string& prefix) const {
    std::vector<InstanceEvent> out;
    for (const auto& e : all()) {
      if (e.message.rfind(prefix, 0) == 0) out.push_back(e);
    }
    return out;
  }
  bool waitFor(const std::string& prefix, std::chrono::milliseconds timeout) const {
    return waitUntil([&] { return !find(prefix).empty(); }, timeout);
  }

 private:
  mutable std::mutex mutex_;
  std::vector<InstanceEvent> events_;
};

struct Harness {
  Harness();
  ~Harness();

  // (Re)creates the agent: a new object, as after a plugin restart, over the
  // same fake world, kernel and network.
  void makeAgent(bool withKernel = true);
  InstanceSpec spec(const std::string& taskId, bool scaleToZero,
                    std::chrono::milliseconds idleTimeout) const;
  std::shared_ptr<Instance> startOk(const InstanceSpec& spec);
  // The plugin dies: the agent and the instance object go, VMMs and files
  // stay. Returns the instance's last record, for a new agent to recover.
  InstanceRecord abandon(std::shared_ptr<Instance> instance);
  FakeVmm* onlyVmm();

  std::filesystem::path stateDir;
  std::shared_ptr<FakeWorld> world = std::make_shared<FakeWorld>();
  FakeKernel kernel;
  std::shared_ptr<FakeNetwork::State> net = std::make_shared<FakeNetwork::State>();
  EventLog events;
  AgentConfig config;
  std::unique_ptr<ScaleToZeroAgent> agent;
};

}  // namespace s2z::agent::testing
