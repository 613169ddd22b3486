// Nomad's resources of a task (TaskConfig.resources) as the limits of its
// cgroups (agent/task_cgroup_limits.h), with the semantics Nomad's executor
// gives exec tasks (drivers/shared/executor: memoryLimits, clampCpuShares):
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
// CPU: `cpu` in MHz as cgroup shares, clamped to the kernel's 2..262144.
// Reserved cores (`resources.cores`): linux_resources.cpuset_cpus.
#pragma once

#include <cstdint>

#include "agent/task_cgroup_limits.h"
#include "driver/proto_types.h"

namespace s2z::driver {

agent::TaskLimits taskLimitsFor(const pb::Resources& resources, uint64_t guestMemoryMib,
                                uint64_t vmmOverheadMib);

}  // namespace s2z::driver
