// First compiling version: makeCloudHypervisorVmm() until the REST backend lands.
#include "vmm/cloud_hypervisor/ch_vmm.h"

namespace s2z::vmm {
namespace {

Error notYet() {
  return makeError(ErrorCode::kUnimplemented, "cloud-hypervisor backend: not implemented yet");
}

class PendingChVmm final : public Vmm {
 public:
  Hypervisor kind() const override { return Hypervisor::kCloudHypervisor; }
  Result<void> boot(const VmConfig&) override { return notYet(); }
  Result<SnapshotInfo> sleep(const std::filesystem::path&) override { return notYet(); }
  Result<void> prepareRestore(const VmConfig&) override { return okResult(); }
  Result<void> restore(const VmConfig&, const std::filesystem::path&) override {
    return notYet();
  }
  Result<void> shutdown(std::chrono::milliseconds) override { return okResult(); }
  Result<void> signal(int) override {
    return makeError(ErrorCode::kFailedPrecondition, "no cloud-hypervisor process");
  }
  std::optional<ProcessIdentity> process() const override { return std::nullopt; }
  bool standby() const override { return false; }
  Result<void> reattach(const VmConfig&, const ProcessIdentity&, bool) override {
    return notYet();
  }
  int exitFd() const override { return -1; }
  ExitStatus reapExit() override { return ExitStatus{0, 0, false}; }
};

}  // namespace

std::unique_ptr<Vmm> makeCloudHypervisorVmm() { return std::make_unique<PendingChVmm>(); }

}  // namespace s2z::vmm
