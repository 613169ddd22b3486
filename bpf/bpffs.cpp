#include "bpf/bpffs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"

namespace s2z::bpf {
namespace {

namespace fs = std::filesystem;

// Serialises check-then-mount across processes of this host.
constexpr const char* kMountLockPath = "/run/s2z-kata-bpffs.lock";

bool isUnder(const fs::path& path, const fs::path& root) {
  auto rel = path.lexically_normal().lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

Result<void> mountBpffs(const fs::path& mountPoint) {
  // Best effort: without /run the race is unlikely enough to mount anyway.
  UniqueFd lock(::open(kMountLockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock && ::flock(lock.get(), LOCK_EX) != 0)
    return systemError(std::string("lock ") + kMountLockPath);
  // Re-check under the lock: another process may have mounted meanwhile.
  auto already = isOnBpffs(mountPoint);
  if (!already.ok()) return already.error();
  if (*already) return okResult();
  std::error_code ec;
  fs::create_directories(mountPoint, ec);
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "create " + mountPoint.string()};
  if (::mount("bpf", mountPoint.c_str(), "bpf", 0, "mode=0700") != 0)
    return systemError("mount bpffs at " + mountPoint.string());
  spdlog::info("bpf: mounted a bpffs at {} (none was visible)", mountPoint.string());
  return okResult();
}

}  // namespace

Result<bool> isOnBpffs(const fs::path& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return systemError("statfs " + path.string());
  }
  return st.f_type == static_cast<decltype(st.f_type)>(BPF_FS_MAGIC);
}

Result<void> ensurePinDir(const fs::path& dir) {
  const fs::path mountPoint = kBpffsMountPoint;
  // The nearest existing ancestor tells whether we are on a bpffs already.
  std::error_code ec;
  fs::path existing = dir;
  while (!existing.empty() && !fs::exists(existing, ec) && existing != existing.root_path())
    existing = existing.parent_path();
  auto onBpffs = isOnBpffs(existing.empty() ? fs::path("/") : existing);
  if (!onBpffs.ok()) return onBpffs.error().wrap("pin dir " + dir.string());
  if (!*onBpffs) {
    if (dir != mountPoint && !isUnder(dir, mountPoint))
      return makeError(ErrorCode::kFailedPrecondition,
                       "pin dir " + dir.string() + " is not on a bpffs");
    S2Z_TRY(mountBpffs(mountPoint), "pin dir " + dir.string());
  }
  fs::create_directories(dir, ec);
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "create pin dir " + dir.string()};
  auto check = isOnBpffs(dir);
  if (!check.ok()) return check.error().wrap("pin dir " + dir.string());
  if (!*check)
    return makeError(ErrorCode::kFailedPrecondition,
                     "pin dir " + dir.string() + " is not on a bpffs");
  return okResult();
}

Result<void> removePinTree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "remove pins under " + dir.string()};
  return okResult();
}

}  // namespace s2z::bpf
