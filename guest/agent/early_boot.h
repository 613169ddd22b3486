// The first things PID 1 does, before anything can be logged or loaded.
#pragma once

#include "common/result.h"

namespace s2z::guest {

// If fds 0-2 are not open (no /dev/console in the initramfs), attach them to
// /dev/console once devtmpfs is mounted. Safe to call more than once.
void attachStdioToConsole();

// Mounts /proc, /sys, /dev (devtmpfs), /run (tmpfs) and cgroup2 at
// /sys/fs/cgroup. EBUSY (already mounted) is fine; any other failure is fatal
// for the caller.
Result<void> mountKernelFilesystems();

// Writes /proc/self/oom_score_adj: -1000 makes the agent the OOM killer's last
// choice (never chosen), so a workload that eats the VM's memory dies instead.
Result<void> setOomScoreAdj(int value);

}  // namespace s2z::guest
