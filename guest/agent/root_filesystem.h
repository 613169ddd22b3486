// The task's root filesystem: the read-only image disk joined with the
// writable scratch disk by overlayfs, plus the kernel filesystems a program
// expects inside it.
//
//   /run/s2z/lower    ext4, read-only   disk serial "s2z-root" (the image)
//   /run/s2z/scratch  ext4, read-write  disk serial "s2z-scratch" (host-formatted)
//   /run/s2z/root     overlay lower + scratch/upper (work: scratch/work)
//     proc, sys, dev (devtmpfs), dev/pts, dev/shm, run (tmpfs)
//     local, alloc (directories), secrets (tmpfs): the task's directories
//     <volume targets>: the task's volume disks (StartWorkload.volumes)
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "s2z/agent/v1/agent.pb.h"

namespace s2z::guest {

inline constexpr char kRootDir[] = "/run/s2z/root";

class RootFilesystem {
 public:
  // Mounts the whole stack once; later calls return at once. A failure names
  // the step and leaves what was mounted for unmountAll().
  Result<void> mount();
  bool mounted() const { return mounted_; }

  // Writes /etc/hosts, /etc/hostname, /etc/resolv.conf (only when DNS settings
  // are given; else the image's file stays) inside the root and sets the
  // kernel hostname (when one is given).
  Result<void> writeIdentity(const agent::v1::StartWorkload& spec);

  // Mounts each volume's disk (found by serial) at its target inside the
  // root, trying the kernel's block filesystems in turn (ext4 is built in;
  // others need their module in the initramfs). A failure names the volume.
  Result<void> mountVolumes(const agent::v1::StartWorkload& spec);

  // docker's readonly_rootfs: after identity and volumes, the overlay root
  // becomes read-only to everything that runs in it. /local and /alloc are
  // bound onto themselves first, so they (like the tmpfs and volume mounts
  // below the root) stay writable, for the workload and for task-file sync.
  Result<void> makeRootReadOnly();

  // Unmounts everything mounted, innermost first; busy mounts are detached.
  // For power off, after sync.
  void unmountAll();

 private:
  Result<void> mountAt(const std::string& source, const std::string& target, const std::string& type,
                       unsigned long flags, const std::string& options);

  bool mounted_ = false;
  std::vector<std::string> mountPoints_;  // in mount order
};

}  // namespace s2z::guest
