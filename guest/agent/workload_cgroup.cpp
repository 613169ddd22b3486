#include "guest/agent/workload_cgroup.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "guest/agent/file_io.h"

namespace s2z::guest {

Result<void> createWorkloadCgroup() {
  S2Z_TRY(writeFile("/sys/fs/cgroup/cgroup.subtree_control", "+memory"), "workload cgroup");
  if (::mkdir(kWorkloadCgroup, 0755) != 0 && errno != EEXIST) {
    return systemError(std::string("workload cgroup: mkdir ") + kWorkloadCgroup);
  }
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
