// The workload's cgroup, /sys/fs/cgroup/workload: everything the workload
// starts stays in it, so at the end one write (cgroup.kill) ends it all, and
// its memory.events say whether the OOM killer ended it.
#pragma once

#include <cstdint>

#include "common/result.h"

namespace s2z::guest {

inline constexpr char kWorkloadCgroup[] = "/sys/fs/cgroup/workload";

// At boot: enables the memory controller for the root's children and creates
// the workload cgroup.
Result<void> createWorkloadCgroup();

// memory.events oom_kill of the workload cgroup (0 when unreadable). The
// kernel counts a victim in its memcg for global OOM kills too.
uint64_t workloadOomKills();

// Kills every process left in the cgroup (cgroup.kill, Linux 5.14+).
void killWorkloadCgroup();

}  // namespace s2z::guest
