// CPU and memory of a VMM process from /proc, for the task's stats.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>

#include "agent/instance.h"
#include "common/result.h"

namespace s2z::agent {

struct ProcessTimes {
  uint64_t userTicks = 0;    // utime, field 14 of /proc/<pid>/stat
  uint64_t systemTicks = 0;  // stime, field 15
  uint64_t rssBytes = 0;     // VmRSS of /proc/<pid>/status
  uint64_t anonBytes = 0;    // RssAnon: the process's own memory (not file pages it shares)
};

// Reads /proc/<pid>/stat and /proc/<pid>/status. kNotFound if the process is gone.
Result<ProcessTimes> readProcessTimes(pid_t pid);

// Turns successive samples of one process into percentages (100 = one core).
// The first sample of a process (or after the pid changes) reports the
// totals with 0 % because there is no interval yet. Not thread-safe.
class UsageSampler {
 public:
  ResourceUsage sample(pid_t pid);

 private:
  pid_t pid_ = 0;
  ProcessTimes last_;
  std::chrono::steady_clock::time_point lastAt_;
};

}  // namespace s2z::agent
