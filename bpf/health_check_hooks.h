// The real HealthCheckHooks: sock_create marks and connect4/connect6
// redirects on the health checker's cgroup v2, through links pinned in
// bpffs so they stay attached across plugin restarts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "bpf/health_cgroup_program.h"
#include "bpf/scale_to_zero_kernel.h"
#include "common/result.h"

namespace s2z::bpf {

class KernelHealthCheckHooks final : public HealthCheckHooks {
 public:
  // Loads the health_cgroup programs (sockets get `mark` OR-ed into
  // sk->mark) and attaches them to cgroup `cgroupRelPath` (relative to the
  // cgroup2 mount, as /proc/<pid>/cgroup shows it). Instance states and
  // addresses come from the maps KernelScaleToZero pins under the same
  // <pinRoot>/v1/, so either may be opened first. Re-attaching after a
  // restart swaps the programs in the pinned links instead of attaching
  // twice. No redirect happens until setResponder. Fails naming the cgroup
  // path or the pin path.
  static Result<std::unique_ptr<KernelHealthCheckHooks>> attach(
      const std::filesystem::path& pinRoot, const std::string& cgroupRelPath, uint32_t mark);
  // Leaves the hooks attached (pinned): a restarted plugin takes them over.
  ~KernelHealthCheckHooks() override = default;

  // Address (network byte order) and port (host order) of the responder.
  // 0.0.0.0 switches the redirect off.
  Result<void> setResponder(uint32_t addrBe, uint16_t port) override;

  // Detaches the three programs from the cgroup and unpins their links.
  Result<void> detach();

  // Detaches hooks pinned under <pinRoot>/v1/ without loading anything
  // (e.g. health checks switched off in the config); ok if none.
  static Result<void> detachPinned(const std::filesystem::path& pinRoot);

 private:
  KernelHealthCheckHooks(std::unique_ptr<HealthCgroupProgram> program,
                         std::filesystem::path linkDir)
      : program_(std::move(program)), linkDir_(std::move(linkDir)) {}

  std::unique_ptr<HealthCgroupProgram> program_;
  std::filesystem::path linkDir_;
};

}  // namespace s2z::bpf
