// The task's cgroup (Nomad's TaskConfig resources.linux_resources
// .cpuset_cgroup, from Nomad 1.7 the directory the task should live in:
// /sys/fs/cgroup/nomad.slice/{share|reserve}.slice/<alloc_id>.<task>.scope on
// cgroup v2). Nomad's client makes the slices; the task's own scope is made
// by whoever starts the task's processes (Nomad's executor for exec, docker
// for docker), so here by the agent, and removed when the task is destroyed.
// Every VMM of the task is spawned into it (vmm::SpawnOptions::cgroup), so
// memory.current is the task's honest charge: its VMM's memory and the page
// cache of its guest RAM file, which the VMM's faults charged there.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/result.h"

namespace s2z::agent {

// Makes the scope directory (mode 0755, like Nomad's) if missing. Its parent
// must exist (kFailedPrecondition) and be on cgroup v2: kUnimplemented for
// Nomad 1.6's cgroup v1 cpuset path, which the task then does without.
Result<void> ensureTaskCgroup(const std::filesystem::path& dir);

// Removes the scope once no process is left in it; ok when already gone.
Result<void> removeTaskCgroup(const std::filesystem::path& dir);

// memory.current of the scope in bytes.
Result<uint64_t> cgroupMemoryCurrent(const std::filesystem::path& dir);

}  // namespace s2z::agent
