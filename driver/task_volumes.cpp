#include "driver/task_volumes.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace s2z::driver {
namespace {

// The guest agent owns these (the task's directories, kernel filesystems).
bool reservedPath(const std::filesystem::path& p) {
  for (const char* reserved : {"/local", "/secrets", "/alloc", "/proc", "/sys", "/dev", "/run"}) {
    auto rel = p.lexically_relative(reserved);
    if (!rel.empty() && *rel.begin() != "..") return true;
  }
  return p == "/";
}

}  // namespace

Result<std::vector<agent::VolumeSpec>> resolveVolumes(const pb::TaskConfig& nomad) {
  std::vector<agent::VolumeSpec> volumes;
  for (int i = 0; i < nomad.mounts_size(); ++i) {
    const auto& m = nomad.mounts(i);
    auto bad = [&](const std::string& what) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("mounts[{}] (task_path {}): {}", i, m.task_path(), what));
    };
    std::filesystem::path target = std::filesystem::path(m.task_path()).lexically_normal();
    if (!target.is_absolute()) return bad("task_path must be an absolute path");
    if (reservedPath(target)) {
      return bad("task_path must not be /, nor under /local, /secrets, /alloc, /proc, /sys, /dev or /run");
    }
    struct stat st{};
    if (::stat(m.host_path().c_str(), &st) != 0) {
      return bad(fmt::format("host_path {}: {}", m.host_path(), std::strerror(errno)));
    }
    if (S_ISDIR(st.st_mode)) {
      return bad(fmt::format("host_path {} is a directory; s2z-kata attaches volumes as block devices only "
                             "(a shared directory would need virtio-fs, which snapshots cannot hold)",
                             m.host_path()));
    }
    if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
      return bad(fmt::format("host_path {} is neither a block device nor a disk image file", m.host_path()));
    }
    if (!m.propagation_mode().empty() && m.propagation_mode() != "private") {
      return bad(fmt::format("propagation_mode \"{}\" needs a shared filesystem; only private mounts are "
                             "possible on a block device",
                             m.propagation_mode()));
    }
    volumes.push_back({m.host_path(), target.string(), m.readonly()});
  }
  return volumes;
}

}  // namespace s2z::driver
