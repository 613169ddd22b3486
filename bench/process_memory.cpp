#include "bench/process_memory.h"

#include <fstream>
#include <sstream>
#include <string>

namespace s2z::bench {

Result<ProcessMemory> readProcessMemory(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  if (!in) return makeError(ErrorCode::kNotFound, "process " + std::to_string(pid) + " not found");
  ProcessMemory m;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kib = 0;
    if (!(fields >> key >> kib)) continue;
    if (key == "Rss:") m.rssKiB = kib;
    if (key == "Pss:") m.pssKiB = kib;
    if (key == "Private_Clean:") m.privateCleanKiB = kib;
    if (key == "Private_Dirty:") m.privateDirtyKiB = kib;
  }
  return m;
}

}  // namespace s2z::bench
