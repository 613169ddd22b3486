// bpffs: the filesystem where maps and links are pinned so they outlive the
// plugin process.
#pragma once

#include <filesystem>

#include "common/result.h"

namespace s2z::bpf {

// Where the driver pins by default; a bpffs is mounted here when none is
// visible (e.g. under `ip netns exec`, which remounts /sys).
inline constexpr const char* kBpffsMountPoint = "/sys/fs/bpf";

// Makes `dir` (and its parents) exist on a bpffs. If `dir` lies under
// kBpffsMountPoint and no bpffs is mounted there, mounts one first (under a
// file lock, so two processes never stack two mounts). Needs CAP_SYS_ADMIN
// for the mount. Fails, naming the path, when `dir` is not on a bpffs.
Result<void> ensurePinDir(const std::filesystem::path& dir);

// True when `path` exists and is on a bpffs.
Result<bool> isOnBpffs(const std::filesystem::path& path);

// Unpins everything under `dir` (files are pins; directories removed
// bottom-up) and `dir` itself. Ok if `dir` does not exist. Kernel objects
// stay alive while something else holds them (an attached program, an fd).
Result<void> removePinTree(const std::filesystem::path& dir);

}  // namespace s2z::bpf
