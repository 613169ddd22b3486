// The Cloud Hypervisor backend of vmm::Vmm, driven through its REST API on the
// --api-socket unix socket. vmm_factory.cpp reaches it only through these two
// functions; the class itself lives in ch_backend.h.
#pragma once

#include <filesystem>
#include <memory>

#include "common/result.h"
#include "vmm/vmm.h"

namespace s2z::vmm {

// Creates a Cloud Hypervisor backend. No process is started.
std::unique_ptr<Vmm> makeCloudHypervisorVmm();

// Runs `<binary> --version` and parses "cloud-hypervisor vX.Y[.Z]".
// Fails with kNotFound when the binary is missing, kFailedPrecondition when the
// output cannot be parsed or the version is older than v40 (tap fds cannot be
// handed over on restore before v40; the message says so).
Result<HypervisorInfo> probeCloudHypervisor(const std::filesystem::path& binary);

}  // namespace s2z::vmm
