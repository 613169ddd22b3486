#include "driver/task_limits.h"

#include <fmt/format.h>

#include <algorithm>

namespace s2z::driver {

namespace {

constexpr int64_t kNoHardLimit = -1;  // memory_max = -1: Nomad's "no limit"

uint64_t mibToBytes(uint64_t mib) { return mib << 20; }

uint64_t sharesFor(uint64_t cpuMhz, uint64_t nodeTotalComputeMhz) {
  if (nodeTotalComputeMhz >= agent::kMaxCpuShares) {
    // As Nomad's drivers do it: a share per MHz no longer fits, so the
    // node's whole compute becomes the largest share.
    cpuMhz = static_cast<uint64_t>(static_cast<double>(cpuMhz) / static_cast<double>(nodeTotalComputeMhz) *
                                   static_cast<double>(agent::kMaxCpuShares));
  }
  return std::clamp(cpuMhz, agent::kMinCpuShares, agent::kMaxCpuShares);
}

Result<void> setHardCpuLimit(const pb::LinuxResources& linux, const LimitInputs& in, agent::TaskLimits& limits) {
  const double percentTicks = linux.percentticks();
  if (!(percentTicks > 0)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "config key \"cpu_hard_limit\": the client sent no share of the node's CPU "
                     "(resources.linux_resources.PercentTicks) to compute the limit from");
  }
  // Docker's arithmetic: the quota is CPU time per period over all cores.
  const auto quota = static_cast<uint64_t>(percentTicks * static_cast<double>(in.cfsPeriodMicros)) * in.hostCpus;
  if (quota < agent::kMinCfsQuotaMicros) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("config key \"cpu_hard_limit\": cpu {} MHz is a CFS quota of {} µs per {} µs "
                                 "period, below the kernel's smallest ({} µs): raise cpu or cpu_cfs_period",
                                 linux.cpu_shares(), quota, in.cfsPeriodMicros, agent::kMinCfsQuotaMicros));
  }
  limits.cpuQuotaMicros = quota;
  limits.cpuPeriodMicros = in.cfsPeriodMicros;
  return okResult();
}

}  // namespace

Result<agent::TaskLimits> taskLimitsFor(const pb::Resources& resources, const LimitInputs& in) {
  agent::TaskLimits limits;
  const int64_t memoryMax = resources.allocated_resources().memory().memory_max_mb();
  const uint64_t reserved = mibToBytes(in.guestMemoryMib + in.vmmOverheadMib);
  if (memoryMax == kNoHardLimit) {
    limits.memoryLowBytes = reserved;
  } else if (memoryMax > 0 && static_cast<uint64_t>(memoryMax) > in.guestMemoryMib) {
    limits.memoryMaxBytes = mibToBytes(static_cast<uint64_t>(memoryMax) + in.vmmOverheadMib);
    limits.memoryLowBytes = reserved;
  } else {
    limits.memoryMaxBytes = reserved;
  }
  const auto& linux = resources.linux_resources();
  // 0: not sent (a client without resources); Nomad's smallest `cpu` is 1.
  if (linux.cpu_shares() > 0) {
    limits.cpuShares = sharesFor(static_cast<uint64_t>(linux.cpu_shares()), in.nodeTotalComputeMhz);
  }
  limits.cpusetCpus = linux.cpuset_cpus();
  if (in.cpuHardLimit) {
    if (auto hard = setHardCpuLimit(linux, in, limits); !hard.ok()) return hard.error();
  }
  return limits;
}

}  // namespace s2z::driver
