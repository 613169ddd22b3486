#include "driver/task_limits.h"

#include <algorithm>

namespace s2z::driver {

namespace {

constexpr int64_t kNoHardLimit = -1;  // memory_max = -1: Nomad's "no limit"

uint64_t mibToBytes(uint64_t mib) { return mib << 20; }

}  // namespace

agent::TaskLimits taskLimitsFor(const pb::Resources& resources, uint64_t guestMemoryMib,
                                uint64_t vmmOverheadMib) {
  agent::TaskLimits limits;
  const int64_t memoryMax = resources.allocated_resources().memory().memory_max_mb();
  const uint64_t reserved = mibToBytes(guestMemoryMib + vmmOverheadMib);
  if (memoryMax == kNoHardLimit) {
    limits.memoryLowBytes = reserved;
  } else if (memoryMax > 0 && static_cast<uint64_t>(memoryMax) > guestMemoryMib) {
    limits.memoryMaxBytes = mibToBytes(static_cast<uint64_t>(memoryMax) + vmmOverheadMib);
    limits.memoryLowBytes = reserved;
  } else {
    limits.memoryMaxBytes = reserved;
  }
  const auto& linux = resources.linux_resources();
  // 0: not sent (a client without resources); Nomad's smallest `cpu` is 1.
  if (linux.cpu_shares() > 0) {
    limits.cpuShares = std::clamp(static_cast<uint64_t>(linux.cpu_shares()), agent::kMinCpuShares, agent::kMaxCpuShares);
  }
  limits.cpusetCpus = linux.cpuset_cpus();
  return limits;
}

}  // namespace s2z::driver
