#include "bpf/cgroup_link.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "bpf/libbpf_error.h"
#include "common/unique_fd.h"

namespace s2z::bpf {
namespace {

namespace fs = std::filesystem;

struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
// Destroying a pinned link only closes our fd; the pin keeps it attached.
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

Result<void> attachAndPin(bpf_program* prog, int cgroupFd, const fs::path& pinPath) {
  LinkPtr link(bpf_program__attach_cgroup(prog, cgroupFd));
  if (!link) return systemError(std::string("attach ") + bpf_program__name(prog) + " to cgroup");
  if (int err = bpf_link__pin(link.get(), pinPath.c_str()); err != 0) {
    bpf_link__detach(link.get());
    return libbpfError("pin link " + pinPath.string(), err);
  }
  return okResult();
}

}  // namespace

Result<uint64_t> cgroupId(int cgroupFd, const fs::path& pathForErrors) {
  // On cgroup2 the directory's inode number is the cgroup id (kernfs id).
  struct stat st {};
  if (::fstat(cgroupFd, &st) != 0) return systemError("stat cgroup " + pathForErrors.string());
  return static_cast<uint64_t>(st.st_ino);
}

Result<void> attachPinnedCgroupLink(bpf_program* prog, int cgroupFd, uint64_t cgroupId,
                                    const fs::path& pinPath) {
  std::error_code ec;
  if (!fs::exists(pinPath, ec)) return attachAndPin(prog, cgroupFd, pinPath);
  LinkPtr old(bpf_link__open(pinPath.c_str()));
  if (!old) return systemError("open pinned link " + pinPath.string());
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_link__fd(old.get()), &info, &len) != 0)
    return systemError("inspect pinned link " + pinPath.string());
  const bool sameHook = info.type == BPF_LINK_TYPE_CGROUP &&
                        info.cgroup.cgroup_id == cgroupId &&
                        info.cgroup.attach_type == bpf_program__expected_attach_type(prog);
  if (sameHook) {
    if (int err = bpf_link__update_program(old.get(), prog); err != 0)
      return libbpfError("update pinned link " + pinPath.string(), err);
    return okResult();
  }
  spdlog::warn("bpf: pinned link {} is on another cgroup (id {}, want {}): re-attaching",
               pinPath.string(), info.cgroup.cgroup_id, cgroupId);
  bpf_link__detach(old.get());  // may already be defunct (cgroup removed)
  if (::unlink(pinPath.c_str()) != 0 && errno != ENOENT)
    return systemError("unpin link " + pinPath.string());
  return attachAndPin(prog, cgroupFd, pinPath);
}

Result<void> detachPinnedCgroupLink(const fs::path& pinPath) {
  std::error_code ec;
  if (!fs::exists(pinPath, ec)) return okResult();
  LinkPtr link(bpf_link__open(pinPath.c_str()));
  if (!link) return systemError("open pinned link " + pinPath.string());
  if (int err = bpf_link__detach(link.get()); err != 0 && err != -ENOLINK)
    return libbpfError("detach link " + pinPath.string(), err);
  if (::unlink(pinPath.c_str()) != 0 && errno != ENOENT)
    return systemError("unpin link " + pinPath.string());
  return okResult();
}

}  // namespace s2z::bpf
