#include "guest/agent/root_filesystem.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"
#include "guest/agent/file_io.h"
#include "guest/agent/path_in_root.h"
#include "guest/agent/virtio_devices.h"

namespace s2z::guest {

namespace {

constexpr char kLower[] = "/run/s2z/lower";
constexpr char kScratch[] = "/run/s2z/scratch";

Result<void> makeDir(const std::string& path, mode_t mode = 0755) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return systemError("mkdir " + path);
  return okResult();
}

Result<std::string> diskWithSerial(const std::string& serial) {
  auto dev = findDiskBySerial(serial);
  if (!dev) {
    return makeError(ErrorCode::kNotFound, "no virtio-blk disk with serial \"" + serial + "\"");
  }
  return *dev;
}

}  // namespace

Result<void> RootFilesystem::mountAt(const std::string& source, const std::string& target,
                                     const std::string& type, unsigned long flags,
                                     const std::string& options) {
  S2Z_TRY(makeDir(target), "mount " + type);
  if (::mount(source.c_str(), target.c_str(), type.c_str(), flags,
              options.empty() ? nullptr : options.c_str()) != 0) {
    return systemError("mount " + type + " " + source + " on " + target);
  }
  mountPoints_.push_back(target);
  return okResult();
}

Result<void> RootFilesystem::mount() {
  if (mounted_) return okResult();
  // A failed earlier attempt may have left some mounts: start clean.
  unmountAll();
  auto lowerDev = diskWithSerial("s2z-root");
  if (!lowerDev.ok()) return lowerDev.error().wrap("root filesystem");
  auto scratchDev = diskWithSerial("s2z-scratch");
  if (!scratchDev.ok()) return scratchDev.error().wrap("root filesystem");

  S2Z_TRY(makeDir("/run/s2z"), "root filesystem");
  S2Z_TRY(mountAt(*lowerDev, kLower, "ext4", MS_RDONLY, ""), "root filesystem");
  S2Z_TRY(mountAt(*scratchDev, kScratch, "ext4", 0, ""), "root filesystem");
  const std::string scratch = kScratch;
  S2Z_TRY(makeDir(scratch + "/upper"), "root filesystem");
  S2Z_TRY(makeDir(scratch + "/work"), "root filesystem");
  S2Z_TRY(mountAt("overlay", kRootDir, "overlay", 0,
                  std::string("lowerdir=") + kLower + ",upperdir=" + scratch + "/upper,workdir=" + scratch + "/work"),
          "root filesystem");

  const std::string root = kRootDir;
  constexpr unsigned long kSafe = MS_NOSUID | MS_NOEXEC | MS_NODEV;
  S2Z_TRY(mountAt("proc", root + "/proc", "proc", kSafe, ""), "root filesystem");
  S2Z_TRY(mountAt("sysfs", root + "/sys", "sysfs", kSafe, ""), "root filesystem");
  S2Z_TRY(mountAt("devtmpfs", root + "/dev", "devtmpfs", MS_NOSUID, "mode=0755"), "root filesystem");
  S2Z_TRY(mountAt("devpts", root + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"),
          "root filesystem");
  S2Z_TRY(mountAt("shm", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"), "root filesystem");
  S2Z_TRY(mountAt("tmpfs", root + "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), "root filesystem");
  // The task's directories (guest/agent/task_files.h); secrets never touch a
  // disk, not even the scratch disk.
  S2Z_TRY(makeDir(root + "/local"), "root filesystem");
  S2Z_TRY(makeDir(root + "/alloc"), "root filesystem");
  S2Z_TRY(mountAt("tmpfs", root + "/secrets", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m"),
          "root filesystem");
  mounted_ = true;
  return okResult();
}

Result<void> RootFilesystem::writeIdentity(const agent::v1::StartWorkload& spec) {
  const std::string etc = std::string(kRootDir) + "/etc";
  S2Z_TRY(makeDir(etc), "write /etc");
  const std::string& hostname = spec.hostname();

  std::string hosts = "127.0.0.1\tlocalhost";
  if (!hostname.empty()) hosts += " " + hostname;
  hosts += "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& entry : spec.hosts()) {
    hosts += entry.address();
    for (const auto& name : entry.names()) hosts += "\t" + name;
    hosts += "\n";
  }
  S2Z_TRY(replaceFile(etc + "/hosts", hosts), "write /etc/hosts");

  if (!hostname.empty()) {
    S2Z_TRY(replaceFile(etc + "/hostname", hostname + "\n"), "write /etc/hostname");
    if (::sethostname(hostname.data(), hostname.size()) != 0) return systemError("sethostname " + hostname);
  }

  if (spec.dns_servers_size() + spec.dns_searches_size() + spec.dns_options_size() > 0) {
    std::string resolv;
    for (const auto& s : spec.dns_servers()) resolv += "nameserver " + s + "\n";
    if (spec.dns_searches_size() > 0) {
      resolv += "search";
      for (const auto& s : spec.dns_searches()) resolv += " " + s;
      resolv += "\n";
    }
    if (spec.dns_options_size() > 0) {
      resolv += "options";
      for (const auto& s : spec.dns_options()) resolv += " " + s;
      resolv += "\n";
    }
    S2Z_TRY(replaceFile(etc + "/resolv.conf", resolv), "write /etc/resolv.conf");
  }
  return okResult();
}

Result<void> RootFilesystem::makeRootReadOnly() {
  const std::string root = kRootDir;
  for (const char* dir : {"/local", "/alloc"}) {
    S2Z_TRY(mountAt(root + dir, root + dir, "", MS_BIND, ""), "read-only root");
  }
  // A bind remount changes only this mount's flags, not the overlay's
  // superblock (which the agent's own mounts below still write through).
  if (::mount(nullptr, kRootDir, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
    return systemError("read-only root: remount " + root);
  }
  return okResult();
}

namespace {

// Block (not "nodev") filesystems the kernel knows, in /proc/filesystems order.
std::vector<std::string> blockFilesystems() {
  std::vector<std::string> types;
  auto text = readFile("/proc/filesystems");
  if (!text.ok()) return {"ext4"};
  size_t at = 0;
  while (at < text->size()) {
    size_t nl = text->find('\n', at);
    if (nl == std::string::npos) nl = text->size();
    std::string line = text->substr(at, nl - at);
    at = nl + 1;
    if (line.rfind("nodev", 0) == 0) continue;
    size_t start = line.find_first_not_of(" \t");
    if (start != std::string::npos) types.push_back(line.substr(start));
  }
  return types;
}

}  // namespace

Result<void> RootFilesystem::mountVolumes(const agent::v1::StartWorkload& spec) {
  if (spec.volumes().empty()) return okResult();
  UniqueFd rootFd(::open(kRootDir, O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootFd) return systemError(std::string("open ") + kRootDir);
  const std::vector<std::string> types = blockFilesystems();
  for (const auto& volume : spec.volumes()) {
    const std::string what = "volume " + volume.target();
    auto dev = diskWithSerial(volume.serial());
    if (!dev.ok()) return dev.error().wrap(what);
    auto target = makeDirsInRoot(rootFd.get(), volume.target());
    if (!target.ok()) return target.error().wrap(what);
    // Through the fd: the path as resolved inside the root, not re-walked.
    const std::string via = "/proc/self/fd/" + std::to_string(target->get());
    char real[4096];
    ssize_t n = ::readlink(via.c_str(), real, sizeof real - 1);
    if (n <= 0) return systemError(what + ": readlink");
    real[n] = '\0';
    unsigned long flags = MS_NOSUID | MS_NODEV | (volume.readonly() ? MS_RDONLY : 0);
    std::string tried;
    bool mounted = false;
    for (const auto& type : types) {
      if (::mount(dev->c_str(), via.c_str(), type.c_str(), flags, nullptr) == 0) {
        mounted = true;
        break;
      }
      tried += (tried.empty() ? "" : ", ") + type + ": " + std::strerror(errno);
    }
    if (!mounted) {
      return makeError(ErrorCode::kFailedPrecondition,
                       what + ": no filesystem on " + *dev + " the guest kernel can mount (" + tried + ")");
    }
    mountPoints_.push_back(real);
  }
  return okResult();
}

void RootFilesystem::unmountAll() {
  for (auto it = mountPoints_.rbegin(); it != mountPoints_.rend(); ++it) {
    if (::umount2(it->c_str(), 0) != 0) ::umount2(it->c_str(), MNT_DETACH);
  }
  mountPoints_.clear();
  mounted_ = false;
}

}  // namespace s2z::guest
