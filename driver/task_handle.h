// The driver's runtime record of one task: the agent Instance running it, the
// TaskConfig Nomad sent (echoed in handles), the network the task exposes,
// and its exit once known.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/instance.h"
#include "driver/proto_types.h"

namespace s2z::driver {

// What StartTask returns as NetworkOverride (the VM's own address).
struct TaskNetwork {
  std::string address;
  std::map<std::string, int32_t> portMap;  // label -> port inside the VM
};

class TaskHandle {
 public:
  TaskHandle(pb::TaskConfig config, std::shared_ptr<agent::Instance> instance, TaskNetwork network,
             std::chrono::system_clock::time_point startedAt)
      : config_(std::move(config)),
        instance_(std::move(instance)),
        network_(std::move(network)),
        startedAt_(startedAt) {}

  // Immutable after construction: no lock needed.
  const std::string& id() const { return config_.id(); }
  const pb::TaskConfig& config() const { return config_; }
  const std::shared_ptr<agent::Instance>& instance() const { return instance_; }
  const TaskNetwork& network() const { return network_; }
  std::chrono::system_clock::time_point startedAt() const { return startedAt_; }

  // Remembers the exit (first one wins; later calls are ignored).
  void recordExit(const agent::ExitInfo& exit);
  // The exit once the instance has been seen to exit.
  std::optional<agent::ExitInfo> exit() const;

 private:
  const pb::TaskConfig config_;
  const std::shared_ptr<agent::Instance> instance_;
  const TaskNetwork network_;
  const std::chrono::system_clock::time_point startedAt_;

  mutable std::mutex mu_;               // guards exit_
  std::optional<agent::ExitInfo> exit_;
};

}  // namespace s2z::driver
