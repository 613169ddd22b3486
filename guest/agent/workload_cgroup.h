// The workload's cgroup, /sys/fs/cgroup/workload: everything the workload
// starts stays in it, so at the end one write (cgroup.kill) ends it all; its
// memory.max keeps some of the guest for the kernel and the agent, and its
// memory.events say whether the OOM killer ended it.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace s2z::guest {

inline constexpr char kWorkloadCgroup[] = "/sys/fs/cgroup/workload";

// What the workload's memory.max leaves to the kernel and the agent of the
// memory free when the agent starts: the workload meets its own cgroup's OOM
// killer while the guest still has free pages. Without a limit it met the
// global one, with the kernel's allocations competing for the last pages;
// under TCG that was seen to livelock the guest for minutes (no OOM, timer
// ticks lost) instead of killing the workload.
inline constexpr uint64_t kGuestMemoryReserveBytes = 8ull << 20;

// memory.max for the workload: MemAvailable (kB) less the reserve; "max" (no
// limit) when the guest is too small to spare it.
std::string workloadMemoryMax(uint64_t memAvailableKib);

// The value in kB of `key` (e.g. "MemAvailable") in the text of
// /proc/meminfo; 0 when it has none.
uint64_t meminfoKib(const std::string& meminfo, const std::string& key);

// At boot: enables the memory controller for the root's children, creates
// the workload cgroup and sets its memory.max.
Result<void> createWorkloadCgroup();

// memory.events oom_kill of the workload cgroup (0 when unreadable). The
// kernel counts a victim in its memcg for global OOM kills too.
uint64_t workloadOomKills();

// Kills every process left in the cgroup (cgroup.kill, Linux 5.14+).
void killWorkloadCgroup();

}  // namespace s2z::guest
