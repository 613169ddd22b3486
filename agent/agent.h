// The agent: starts, recovers and tracks instances for one plugin process, and
// runs the scale-to-zero machinery (idle monitor, wake events, health responder).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/boot_gate.h"
#include "agent/boot_gate.h"
#include "agent/instance.h"
#include "common/result.h"
#include "image/image_store.h"

namespace s2z::agent {

struct AgentConfig {
  std::filesystem::path stateDir = "/var/lib/s2z-kata";
  std::string subnet = "10.89.0.0/24";     // VM addresses; .1 is the host gateway
  uint32_t healthCheckMark = 0;            // 0: health filtering off
  std::string healthCheckCgroup;           // cgroup v2 path relative to the mount; empty: none
  std::chrono::milliseconds idlePollInterval{100};
  // bpffs directory for the pinned maps and links (tests use their own).
  std::filesystem::path bpfPinRoot = "/sys/fs/bpf/s2z-kata";
  // argv that starts a task's log FIFO holder (agent/task_output.h); empty:
  // the embedded s2z-log-holder, installed under stateDir/bin by makeAgent.
  std::vector<std::string> logHolderCommand;
  // How long a start waits for the client's log collector to open a FIFO.
  std::chrono::milliseconds logReaderWait{10000};
  // After a cold boot that replaced a lost guest, new connections wait until
  // it serves (agent/boot_gate.h).
  BootGateLimits bootGate;
  // image_gc: cached images (<stateDir>/images) no task has used for
  // imageGcDelay are removed; off: kept until removed by hand.
  bool imageGc = true;
  std::chrono::milliseconds imageGcDelay{3 * 60 * 1000};
  // At most this many deep-sleeping tasks keep a standby VMM (the most
  // recently slept); 0: none, a deep-sleeping task holds no process.
  unsigned standbyVmms = 0;
  // Refused snapshots kept in <stateDir>/quarantine, newest first
  // (agent/snapshot_quarantine.h).
  unsigned quarantineKept = 4;
};

struct AgentStatus {
  unsigned instances = 0;
  unsigned sleeping = 0;
  bool scaleToZeroReady = false;  // BPF loaded
  std::string problem;            // why scale-to-zero is unavailable, if it is
};

class Agent {
 public:
  virtual ~Agent() = default;

  // Boots a new instance. On failure everything created so far is undone.
  // kUnavailable errors are transient (worth a retry).
  virtual Result<std::shared_ptr<Instance>> start(const InstanceSpec& spec, EventSink events) = 0;
  // Re-adopts an instance from its record (idempotent: returns the tracked
  // one if already known). kNotFound when the VM is gone.
  virtual Result<std::shared_ptr<Instance>> recover(const InstanceRecord& record,
                                                    EventSink events) = 0;
  virtual void forget(const std::string& taskId) = 0;
  // An OCI/Docker image as a read-only root disk, cached under
  // stateDir/images (image/image_store.h); `progress` hears each stage.
  virtual Result<image::PreparedImage> prepareImage(const std::string& image, const image::PullOptions& options,
                                                    const std::function<void(const std::string&)>& progress) = 0;
  virtual AgentStatus status() const = 0;
};

// Creates the real agent. Loads/opens the BPF side; if that fails the agent
// still runs VMs and status().problem says why scale-to-zero is off.
Result<std::unique_ptr<Agent>> makeAgent(const AgentConfig& config);

}  // namespace s2z::agent
