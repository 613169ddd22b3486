// Finding cgroup v2 directories: paths are given relative to the cgroup2
// mount, as /proc/<pid>/cgroup shows them ("0::/system.slice/consul.service").
#pragma once

#include <filesystem>
#include <string>

#include "common/result.h"

namespace s2z::bpf {

// The cgroup2 mount point, read from /proc/self/mountinfo (on hybrid
// systems /sys/fs/cgroup/unified, on unified ones /sys/fs/cgroup).
// kNotFound when no cgroup2 is mounted.
Result<std::filesystem::path> cgroup2MountPoint();

// The directory of cgroup `relPath` (leading '/' optional) under the cgroup2
// mount. kNotFound, naming the path, when it does not exist.
Result<std::filesystem::path> cgroup2Dir(const std::string& relPath);

}  // namespace s2z::bpf
