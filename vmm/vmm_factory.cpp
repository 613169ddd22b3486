// Picks the backend for a Hypervisor kind; the rest of the system only sees Vmm.
#include "vmm/cloud_hypervisor/ch_vmm.h"
#include "vmm/qemu/qemu_vmm.h"
#include "vmm/vmm.h"

namespace s2z::vmm {

const char* hypervisorName(Hypervisor h) {
  switch (h) {
    case Hypervisor::kQemu: return "qemu";
    case Hypervisor::kCloudHypervisor: return "cloud-hypervisor";
  }
  return "unknown";
}

const char* acceleratorName(Accelerator a) {
  switch (a) {
    case Accelerator::kKvm: return "kvm";
    case Accelerator::kTcg: return "tcg";
  }
  return "unknown";
}

std::unique_ptr<Vmm> makeVmm(Hypervisor kind) {
  switch (kind) {
    case Hypervisor::kQemu: return makeQemuVmm();
    case Hypervisor::kCloudHypervisor: return makeCloudHypervisorVmm();
  }
  return nullptr;
}

Result<HypervisorInfo> probeHypervisor(Hypervisor kind, const std::filesystem::path& binary) {
  switch (kind) {
    case Hypervisor::kQemu: return probeQemu(binary);
    case Hypervisor::kCloudHypervisor: return probeCloudHypervisor(binary);
  }
  return makeError(ErrorCode::kInvalidArgument, "unknown hypervisor kind");
}

}  // namespace s2z::vmm
