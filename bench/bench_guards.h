// Scope guards the benchmark scenarios share: an agent's BPF pins removed
// once the agent is gone, an instance destroyed and forgotten.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "bpf/kernel_scale_to_zero.h"

namespace s2z::bench {

// Removes the agent's pinned maps once the agent is gone (declared before it).
struct PinsGuard {
  std::filesystem::path root;
  ~PinsGuard() {
    if (auto r = bpf::KernelScaleToZero::removePins(root); !r.ok())
      spdlog::warn("bench: remove pins {}: {}", root.string(), r.error().describe());
    std::error_code ec;
    std::filesystem::remove(root, ec);
  }
};

// Destroys an instance (VM, tap, route, BPF entries, files) when it goes out
// of scope, and makes the agent forget it.
struct InstanceGuard {
  agent::Agent& agent;
  std::shared_ptr<agent::Instance> instance;
  std::string taskId;
  ~InstanceGuard() {
    if (!instance) return;
    if (auto r = instance->destroy(); !r.ok())
      spdlog::warn("bench: destroy {}: {}", taskId, r.error().describe());
    agent.forget(taskId);
  }
};

}  // namespace s2z::bench
