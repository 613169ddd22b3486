// The limits Nomad's resources put on a task's cgroups (agent/task_cgroup.h).
// Nomad's client only makes a task's cgroups; the driver sets their limits,
// as Nomad's executor does for exec tasks (drivers/shared/executor,
// configureCgroups) and docker does for its containers. Written once, at
// the start, before any process of the task joins; the cgroups keep them
// through every sleep, wake and plugin restart, so they are not recorded.
//
// | limit | cgroup v1 (the task's own directory) | cgroup v2 (the task's scope) |
// |---|---|---|
// | hard memory limit | memory/…/memory.limit_in_bytes | memory.max |
// | memory reservation | memory/…/memory.soft_limit_in_bytes | memory.low |
// | CPU weight (Nomad's `cpu`, MHz, as shares) | cpu/…/cpu.shares | cpu.weight (shares mapped as runc ≥ 1.3.2 maps them) |
// | reserved cores (`resources.cores`) | cpuset/…/reserve/<scope>/cpuset.cpus | cpuset.cpus |
// | hard CPU limit (task `cpu_hard_limit`) | cpu/…/cpu.cfs_period_us, cpu.cfs_quota_us | cpu.max |
//
// A file that is not there means that controller is not enabled for the
// task's cgroup (a v2 scope whose parent does not delegate it, a v1
// hierarchy not mounted): that limit is skipped and logged, as the task
// then does without that controller anyway.
#pragma once

#include <cstdint>
#include <string>

#include "agent/task_cgroup.h"
#include "common/result.h"

namespace s2z::agent {

// The kernel's range of v1 cpu.shares.
inline constexpr uint64_t kMinCpuShares = 2, kMaxCpuShares = 262144;
// The kernel's range of a CFS period, and its smallest quota, in µs.
inline constexpr uint64_t kMinCfsPeriodMicros = 1000, kMaxCfsPeriodMicros = 1000000;
inline constexpr uint64_t kMinCfsQuotaMicros = 1000;

struct TaskLimits {
  uint64_t memoryMaxBytes = 0;  // hard limit; 0: none
  uint64_t memoryLowBytes = 0;  // reservation (soft limit); 0: none
  uint64_t cpuShares = 0;       // v1 shares, 2..262144; 0: the kernel's default
  std::string cpusetCpus;       // reserved cores ("1,3"); empty: the partition's
  // Hard CPU limit: at most quota µs of CPU time per period µs, over all
  // cores (2 cores' worth: quota = 2 x period). 0: no limit.
  uint64_t cpuQuotaMicros = 0;
  uint64_t cpuPeriodMicros = 0;

  bool operator==(const TaskLimits&) const = default;
};

// cgroup v2 cpu.weight (1..10000) for v1 shares (2..262144): the quadratic
// map runc and crun use, which keeps minimum, default (1024 -> 100) and
// maximum where they were; 0 stays 0 (unset).
uint64_t cpuWeightForShares(uint64_t shares);

// Writes `limits` into the cgroup's control files. An error names the file
// that refused its value.
Result<void> applyTaskLimits(const TaskCgroup& cgroup, const TaskLimits& limits);

}  // namespace s2z::agent
