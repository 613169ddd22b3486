#include "driver/real_host.h"

namespace s2z::driver {
namespace {

class RealHost final : public Host {
 public:
  Result<std::unique_ptr<agent::Agent>> makeAgent(const agent::AgentConfig& config) override {
    return agent::makeAgent(config);
  }
  Result<vmm::HypervisorInfo> probeHypervisor(vmm::Hypervisor kind,
                                              const std::filesystem::path& binary) override {
    return vmm::probeHypervisor(kind, binary);
  }
  vmm::AcceleratorProbe detectAccelerator() override { return vmm::detectAccelerator(); }
  Result<vmm::kata::KataDefaults> loadKataConfig(const std::filesystem::path& path) override {
    return vmm::kata::loadKataConfig(path);
  }
};

}  // namespace

std::unique_ptr<Host> makeRealHost() { return std::make_unique<RealHost>(); }

}  // namespace s2z::driver
