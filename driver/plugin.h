// State shared by the plugin's gRPC services for one plugin process: the
// latest SetConfig, the lazily created agent, the task store, the event bus
// and cached host facts. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/agent.h"
#include "driver/event_bus.h"
#include "driver/host.h"
#include "driver/plugin_config.h"
#include "driver/task_store.h"

namespace s2z::driver {

inline constexpr const char* kPluginName = "s2z-kata";
inline constexpr const char* kPluginVersion = "0.1.0";
inline constexpr const char* kPluginApiVersion = "v0.1.0";

struct PluginOptions {
  // Fingerprint: how often facts are re-gathered, and the longest gap
  // between two messages even without a change.
  std::chrono::milliseconds fingerprintCheckInterval{10000};
  std::chrono::milliseconds fingerprintResendInterval{30000};
  // Granularity at which blocking calls (WaitTask, streams) notice a
  // cancelled client.
  std::chrono::milliseconds cancelPollInterval{200};
  // MHz of one core for CPU total_ticks; 0: read /proc/cpuinfo.
  double cpuMhzPerCore = 0;
  // PATH used to find hypervisor binaries; nullopt: this process's PATH.
  std::optional<std::string> pathEnv;
};

class Plugin {
 public:
  Plugin(std::unique_ptr<Host> host, PluginOptions options = {});
  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  // Stores a validated config (SetConfig). No side effects on the host. If
  // the agent already exists, settings it was built with (state_dir, subnet,
  // health mark/cgroup) keep their old values until the plugin restarts; a
  // warning says so.
  void setConfig(PluginConfig config);
  // The last SetConfig's config, or the defaults if none came yet.
  PluginConfig config() const;
  bool configured() const;

  // The agent, created on first use from the current config. A failed
  // creation is not cached: the next call tries again.
  Result<agent::Agent*> agent();
  // The agent if it has been created, nullptr otherwise; never creates it.
  agent::Agent* agentIfCreated() const;

  // Accelerator detection, run once and cached (it may boot a probe guest).
  vmm::AcceleratorProbe detectedAccelerator();
  // The accelerator for new VMs under config: forced, or detected for "auto".
  vmm::Accelerator acceleratorFor(const PluginConfig& config);

  double cpuMhzPerCore() const { return cpuMhzPerCore_; }
  std::string pathEnv() const;
  const PluginOptions& options() const { return options_; }
  Host& host() { return *host_; }
  TaskStore& tasks() { return tasks_; }
  EventBus& events() { return events_; }

 private:
  const PluginOptions options_;
  const double cpuMhzPerCore_;
  // Declared before agent_ and tasks_: instances' event sinks point at it,
  // so it must outlive both.
  EventBus events_;
  std::unique_ptr<Host> host_;

  mutable std::mutex mu_;  // guards config_, configured_, agent_, accelerator_
  PluginConfig config_;
  bool configured_ = false;
  std::unique_ptr<agent::Agent> agent_;
  std::optional<vmm::AcceleratorProbe> accelerator_;
  std::mutex agentCreateMu_;  // serializes agent creation (slow) outside mu_

  // Declared last, destroyed first: handles hold instances owned by agent_.
  TaskStore tasks_;
};

// MHz of one core from /proc/cpuinfo text ("cpu MHz : 2500.000"); 0 if absent.
double parseCpuMhz(const std::string& cpuinfo);

}  // namespace s2z::driver
