// The task's cgroups, from Nomad's TaskConfig resources.linux_resources
// .cpuset_cgroup. Every VMM of the task is spawned into them
// (vmm::SpawnOptions::cgroups), so Nomad's limits apply and the memory charge is the task's honest one: its VMM's
// memory and the page cache of its guest RAM file, which the VMM's faults
// charged there.
//
// What Nomad 1.7+ sends and makes (client/lib/cgroupslib), per host mode:
//
// | mode | cpuset_cgroup | the task's other cgroups (made by the client's wrangler hook at prestart, killed and removed at stop) |
// |---|---|---|
// | v2 | <root>/nomad.slice/{share,reserve}.slice/<alloc_id>.<task>.scope | none: that scope is the task's |
// | v1 | <cpuset>/nomad/share (shared by every task without reserved cores) or <cpuset>/nomad/reserve/<alloc_id>.<task> | <freezer\|cpu\|memory>/nomad/<alloc_id>.<task> |
//
// ("nomad" is the client's cgroup_parent.) Nomad 1.6 sent a v1 cpuset path
// of another shape; the task then does without (kUnimplemented).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::agent {

struct TaskCgroup {
  bool v1 = false;
  // The task's own directories: made if missing, removed when the task is
  // destroyed. v2: the scope; v1: one per controller (memory, cpu, freezer).
  std::vector<std::filesystem::path> own;
  // v1: Nomad's cpuset partition (shared, or the task's reserved one):
  // joined, never made or removed here (the client owns it).
  std::filesystem::path cpuset;
  // v1: `cpuset` is the task's own (reserved cores: <parent>/reserve/<scope>),
  // whose cores the driver sets; the shared partition's are the client's.
  bool reservedCpuset = false;
  // Among `own`: the one whose charge TaskStats report; empty: none.
  std::filesystem::path memory;
  // Among `own`: the one whose cpu controller weighs the task; empty: none.
  std::filesystem::path cpu;

  bool empty() const { return own.empty() && cpuset.empty(); }
  // Every directory a process of the task joins.
  std::vector<std::filesystem::path> joined() const;
};

// One mounted cgroup hierarchy (/proc/self/mountinfo).
struct CgroupMount {
  std::filesystem::path dir;
  bool v2 = false;
  std::vector<std::string> controllers;  // v1: the hierarchy's controllers
};
std::vector<CgroupMount> readCgroupMounts();

// Which directories the task lives in. `nomadPath` is cpuset_cgroup, `scope`
// Nomad's name for the task's cgroup ("<alloc_id>.<task>"). kUnimplemented
// for a path that is not one of the shapes above (the task then does
// without), kFailedPrecondition when its parent is missing.
Result<TaskCgroup> resolveTaskCgroup(const std::filesystem::path& nomadPath, const std::string& scope,
                                     const std::vector<CgroupMount>& mounts);

// resolveTaskCgroup on this host's mounts; empty when `nomadPath` is empty
// or does not resolve (the start that made the task said why).
TaskCgroup taskCgroupOnThisHost(const std::filesystem::path& nomadPath, const std::string& scope);

// Makes the task's own directories (mode 0755, like Nomad's) if missing.
// Their parents and the cpuset partition must exist (kFailedPrecondition):
// Nomad's client makes them.
Result<void> ensureTaskCgroup(const TaskCgroup& cgroup);

// Removes the task's own directories once no process is left in them; ok
// when already gone.
Result<void> removeTaskCgroup(const TaskCgroup& cgroup);

// The memory charge in bytes: memory.current (v2), memory.usage_in_bytes
// (v1). kNotFound when there is no memory controller there.
Result<uint64_t> cgroupMemoryCharge(const TaskCgroup& cgroup);

// How many processes the kernel's OOM killer has killed in the task's memory
// cgroup (`oom_kill` of memory.events on v2, of memory.oom_control on v1).
// kNotFound when there is no memory controller there.
Result<uint64_t> cgroupOomKills(const TaskCgroup& cgroup);

// How often and how long the hard CPU limit held the task back (cpu.stat:
// nr_throttled, and throttled_time in ns on v1 or throttled_usec on v2).
// kNotFound when there is no cpu controller there.
struct CpuThrottling {
  uint64_t periods = 0;
  uint64_t nanoseconds = 0;
};
Result<CpuThrottling> cgroupCpuThrottling(const TaskCgroup& cgroup);

}  // namespace s2z::agent
