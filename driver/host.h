// What the driver needs from the machine, behind one interface so the RPC
// logic is unit-tested with fakes (tests/driver) and the real parts are
// plugged in only by the executable (real_host.cpp).
#pragma once

#include <filesystem>
#include <memory>

#include "agent/agent.h"
#include "common/result.h"
#include "vmm/kata/kata_config.h"
#include "vmm/vmm.h"

namespace s2z::driver {

class Host {
 public:
  virtual ~Host() = default;

  // Creates the agent (loads BPF, opens the state dir, ...). Called once, on
  // the first Fingerprint/StartTask/RecoverTask, never from SetConfig.
  virtual Result<std::unique_ptr<agent::Agent>> makeAgent(const agent::AgentConfig& config) = 0;
  // Runs the hypervisor binary to learn its version (vmm::probeHypervisor).
  virtual Result<vmm::HypervisorInfo> probeHypervisor(vmm::Hypervisor kind,
                                                      const std::filesystem::path& binary) = 0;
  // vmm::detectAccelerator; may be slow, callers cache it.
  virtual vmm::AcceleratorProbe detectAccelerator() = 0;
  // vmm::kata::loadKataConfig.
  virtual Result<vmm::kata::KataDefaults> loadKataConfig(const std::filesystem::path& path) = 0;
};

}  // namespace s2z::driver
