// What one process costs the host in memory, from /proc/<pid>/smaps_rollup:
// RSS (every resident page it maps), PSS (shared pages divided among their
// users), private clean pages (file pages only it maps now: page cache that
// the next process of the same program shares) and private dirty pages
// (its own heap, stack and written data: what every further copy adds).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/result.h"

namespace s2z::bench {

struct ProcessMemory {
  uint64_t rssKiB = 0;
  uint64_t pssKiB = 0;
  uint64_t privateCleanKiB = 0;
  uint64_t privateDirtyKiB = 0;
};

// kNotFound when the process is gone.
Result<ProcessMemory> readProcessMemory(pid_t pid);

}  // namespace s2z::bench
