// Nomad's resources of a task (TaskConfig.resources) as the limits of its
// cgroups (agent/task_cgroup_limits.h), with the semantics Nomad's executor
// gives exec tasks (drivers/shared/executor: memoryLimits, clampCpuShares)
// and docker gives its containers (cpu_hard_limit, cpu_cfs_period):
//
// | job's `resources` | hard limit | reservation |
// |---|---|---|
// | `memory = M` | M + overhead | none |
// | `memory = M, memory_max = X` (oversubscription) | X + overhead | M + overhead |
// | `memory = M, memory_max = -1` | none | M + overhead |
//
// The guest's RAM is M (a VM's RAM is fixed at boot); the overhead is the
// plugin's `vmm_memory_overhead`, the VMM's own memory (TCG's translation
// buffer, device state, the log holder), which Kata adds to a sandbox the
// same way (Kubernetes' pod overhead). Without it, a guest using its RAM
// would push its own pages out to the RAM file.
//
// CPU: `cpu` in MHz as cgroup shares, clamped to the kernel's 2..262144; on
// a node of more than 262144 MHz in all, scaled down first so the node's
// whole compute maps to the largest share (docker's cpuResources, the
// executor's clampCpuShares). Reserved cores (`resources.cores`):
// linux_resources.cpuset_cpus. With the task's `cpu_hard_limit`, a CFS
// quota as docker computes it: PercentTicks (cpu ÷ the node's usable
// compute) x period x the host's CPUs.
#pragma once

#include <cstdint>

#include "agent/task_cgroup_limits.h"
#include "common/result.h"
#include "driver/proto_types.h"

namespace s2z::driver {

struct LimitInputs {
  uint64_t guestMemoryMib = 0;
  uint64_t vmmOverheadMib = 0;
  // The node's compute in MHz (Topology of SetConfig); 0: unknown, a client
  // older than Nomad 1.7 that sends none.
  uint64_t nodeTotalComputeMhz = 0;
  // The CPUs this plugin may run on (docker's runtime.NumCPU()).
  unsigned hostCpus = 1;
  bool cpuHardLimit = false;
  uint64_t cfsPeriodMicros = 100000;
};

// Fails with kInvalidArgument naming `cpu_hard_limit` when a hard limit
// cannot be computed (no PercentTicks) or is below the kernel's 1 ms.
Result<agent::TaskLimits> taskLimitsFor(const pb::Resources& resources, const LimitInputs& in);

}  // namespace s2z::driver
