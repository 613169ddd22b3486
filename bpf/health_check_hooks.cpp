#include "bpf/health_check_hooks.h"

#include <fcntl.h>

#include "bpf/bpffs.h"
#include "bpf/cgroup2.h"
#include "bpf/cgroup_link.h"
#include "bpf/map_pins.h"
#include "common/unique_fd.h"

namespace s2z::bpf {
namespace {

std::filesystem::path linkDirFor(const std::filesystem::path& pinRoot) {
  return layoutDir(pinRoot) / "links";
}

}  // namespace

Result<std::unique_ptr<KernelHealthCheckHooks>> KernelHealthCheckHooks::attach(
    const std::filesystem::path& pinRoot, const std::string& cgroupRelPath, uint32_t mark) {
  const std::string ctx = "attach health-check hooks to cgroup " + cgroupRelPath;
  auto dir = cgroup2Dir(cgroupRelPath);
  if (!dir.ok()) return dir.error().wrap(ctx);
  UniqueFd cgroupFd(::open(dir->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroupFd) return systemError("open " + dir->string()).wrap(ctx);
  auto id = cgroupId(cgroupFd.get(), *dir);
  if (!id.ok()) return id.error().wrap(ctx);

  const auto linkDir = linkDirFor(pinRoot);
  S2Z_TRY(ensurePinDir(linkDir), ctx);
  auto program = HealthCgroupProgram::load(layoutDir(pinRoot), mark);
  if (!program.ok()) return program.error().wrap(ctx);
  S2Z_TRY((*program)->attachAll(cgroupFd.get(), *id, linkDir), ctx);
  return std::unique_ptr<KernelHealthCheckHooks>(
      new KernelHealthCheckHooks(std::move(*program), linkDir));
}

Result<void> KernelHealthCheckHooks::setResponder(uint32_t addrBe, uint16_t port) {
  S2Z_TRY(program_->setResponder(addrBe, port), "set health responder");
  return okResult();
}

Result<void> KernelHealthCheckHooks::detach() {
  S2Z_TRY(HealthCgroupProgram::detachAll(linkDir_), "detach health-check hooks");
  return okResult();
}

Result<void> KernelHealthCheckHooks::detachPinned(const std::filesystem::path& pinRoot) {
  S2Z_TRY(HealthCgroupProgram::detachAll(linkDirFor(pinRoot)), "detach health-check hooks");
  return okResult();
}

}  // namespace s2z::bpf
