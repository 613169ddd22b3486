// What the agent needs from the kernel side of scale-to-zero. The agent takes
// this interface by reference so its logic can be unit-tested with a fake;
// KernelScaleToZero (bpf/kernel_scale_to_zero.h) is the real one, backed by
// libbpf skeletons, pinned maps and the TC / cgroup programs.
//
// Instances are identified by the ifindex of their host-side tap.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::bpf {

// Values match S2Z_STATE_* in s2z_types.h; never renumbered.
enum class InstanceState : uint32_t {
  kRunning = 1,   // packets pass and are counted
  kSleeping = 2,  // a real packet flips it to kWaking and emits one wake event
  kWaking = 3,    // set by the kernel (CAS); further packets emit nothing
  kBooting = 4,   // a cold-booted guest not yet serving: new TCP connections dropped
};

struct InstanceCounters {
  uint64_t packets = 0;        // counted (non-health) packets toward the VM
  uint64_t bytes = 0;
  uint64_t healthPackets = 0;  // packets carrying the health mark (not counted above)
  uint64_t lastActivityNs = 0; // CLOCK_MONOTONIC ns of the last counted packet, 0 if none
};

struct WakeEvent {
  uint32_t ifindex = 0;
  uint64_t timestampNs = 0;  // CLOCK_MONOTONIC ns when the waking packet was seen
};

class ScaleToZeroKernel {
 public:
  virtual ~ScaleToZeroKernel() = default;

  // Attaches the counting classifier to egress of the tap and registers the
  // instance (state kRunning, zeroed counters, address for connect redirects).
  // Idempotent for the same ifindex.
  virtual Result<void> addInstance(uint32_t ifindex, uint32_t vmAddrBe) = 0;
  // Detaches and forgets; ok if unknown.
  virtual Result<void> removeInstance(uint32_t ifindex, uint32_t vmAddrBe) = 0;

  virtual Result<void> setState(uint32_t ifindex, InstanceState state) = 0;
  virtual Result<InstanceState> state(uint32_t ifindex) const = 0;
  virtual Result<InstanceCounters> counters(uint32_t ifindex) const = 0;
  // kBooting: the TCP port of the first new connection dropped since the
  // state was set (host order), 0 while none came.
  virtual Result<uint16_t> waitingPort(uint32_t ifindex) const = 0;

  // Becomes readable when wake events are pending (ring buffer epoll fd).
  virtual int wakeEventFd() const = 0;
  // Returns and removes every pending wake event; never blocks.
  virtual std::vector<WakeEvent> drainWakeEvents() = 0;
};

// Health-check plumbing on a cgroup v2: mark every socket the cgroup creates
// with healthMark, and while an instance sleeps redirect the cgroup's
// connections to its address to the always-200 responder.
class HealthCheckHooks {
 public:
  virtual ~HealthCheckHooks() = default;
  // Address (network byte order) and port (host order) of the responder.
  virtual Result<void> setResponder(uint32_t addrBe, uint16_t port) = 0;
};

}  // namespace s2z::bpf
