// What one process costs the host in memory, from /proc/<pid>/smaps_rollup:
// RSS (every resident page it maps), PSS (shared pages divided among their
// users) and private pages (what exiting would free).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/result.h"

namespace s2z::bench {

struct ProcessMemory {
  uint64_t rssKiB = 0;
  uint64_t pssKiB = 0;
  uint64_t privateKiB = 0;  // Private_Clean + Private_Dirty
};

// kNotFound when the process is gone.
Result<ProcessMemory> readProcessMemory(pid_t pid);

}  // namespace s2z::bench
