#include "agent/task_cgroup.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fstream>

namespace s2z::agent {

Result<void> ensureTaskCgroup(const std::filesystem::path& dir) {
  struct statfs fs {};
  auto parent = dir.parent_path();
  if (::statfs(parent.c_str(), &fs) != 0) {
    return Error{ErrorCode::kFailedPrecondition, errno, "task cgroup: parent " + parent.string() + " missing"};
  }
  if (fs.f_type != CGROUP2_SUPER_MAGIC) {
    return makeError(ErrorCode::kUnimplemented, "task cgroup: " + parent.string() + " is not on cgroup v2");
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return systemError("task cgroup: create " + dir.string());
  }
  return okResult();
}

Result<void> removeTaskCgroup(const std::filesystem::path& dir) {
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return systemError("task cgroup: remove " + dir.string());
  return okResult();
}

Result<uint64_t> cgroupMemoryCurrent(const std::filesystem::path& dir) {
  std::ifstream in(dir / "memory.current");
  uint64_t bytes = 0;
  if (!(in >> bytes)) {
    return makeError(ErrorCode::kNotFound, "no memory.current in " + dir.string());
  }
  return bytes;
}

}  // namespace s2z::agent
