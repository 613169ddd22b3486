#include "guest/agent/workload_cgroup.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "guest/agent/file_io.h"

namespace s2z::guest {

std::string workloadMemoryMax(uint64_t memAvailableKib) {
  const uint64_t available = memAvailableKib * 1024;
  // Below twice the reserve the workload would lose half of what is free.
  if (available < 2 * kGuestMemoryReserveBytes) return "max";
  return std::to_string(available - kGuestMemoryReserveBytes);
}

uint64_t meminfoKib(const std::string& meminfo, const std::string& key) {
  const std::string label = key + ":";
  for (size_t pos = 0; pos < meminfo.size();) {
    size_t end = meminfo.find('\n', pos);
    if (end == std::string::npos) end = meminfo.size();
    if (meminfo.compare(pos, label.size(), label) == 0) {
      return std::strtoull(meminfo.c_str() + pos + label.size(), nullptr, 10);
    }
    pos = end + 1;
  }
  return 0;
}

Result<void> createWorkloadCgroup() {
  S2Z_TRY(writeFile("/sys/fs/cgroup/cgroup.subtree_control", "+memory"), "workload cgroup");
  if (::mkdir(kWorkloadCgroup, 0755) != 0 && errno != EEXIST) {
    return systemError(std::string("workload cgroup: mkdir ") + kWorkloadCgroup);
  }
  auto meminfo = readFile("/proc/meminfo");
  S2Z_TRY(meminfo, "workload cgroup");
  const std::string limit = workloadMemoryMax(meminfoKib(*meminfo, "MemAvailable"));
  S2Z_TRY(writeFile(std::string(kWorkloadCgroup) + "/memory.max", limit), "workload cgroup: memory.max");
  return okResult();
}

uint64_t workloadOomKills() {
  auto events = readFile(std::string(kWorkloadCgroup) + "/memory.events");
  if (!events.ok()) return 0;
  // Lines "key value"; oom_kill (not oom_kill_group nor oom).
  size_t pos = 0;
  while (pos < events->size()) {
    size_t end = events->find('\n', pos);
    if (end == std::string::npos) end = events->size();
    if (events->compare(pos, 9, "oom_kill ") == 0) {
      return std::strtoull(events->c_str() + pos + 9, nullptr, 10);
    }
    pos = end + 1;
  }
  return 0;
}

void killWorkloadCgroup() {
  (void)writeFile(std::string(kWorkloadCgroup) + "/cgroup.kill", "1");
}

}  // namespace s2z::guest
