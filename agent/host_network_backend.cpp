#include "agent/host_network.h"
#include "agent/network_backend.h"
#include "agent/tap_device.h"

namespace s2z::agent {
namespace {

class HostTap : public Tap {
 public:
  explicit HostTap(TapDevice device) : device_(std::move(device)) {}
  int fd() const override { return device_.fd(); }
  const std::string& name() const override { return device_.name(); }
  uint32_t ifindex() const override { return device_.ifindex(); }
  Result<void> destroy() override { return device_.destroy(); }

 private:
  TapDevice device_;
};

class HostNetworkBackend : public NetworkBackend {
 public:
  explicit HostNetworkBackend(AddressPool pool) : pool_(std::move(pool)) {}

  Result<Lease> allocateAddress(const std::string& owner) override {
    return pool_.allocate(owner);
  }
  Result<Lease> reclaimAddress(const std::string& address, const std::string& owner) override {
    return pool_.reclaim(address, owner);
  }
  Result<void> releaseAddress(const std::string& address) override {
    return pool_.release(address);
  }
  Result<std::unique_ptr<Tap>> createTap(const std::string& name) override {
    auto tap = TapDevice::create(name);
    if (!tap.ok()) return tap.error();
    return std::unique_ptr<Tap>(std::make_unique<HostTap>(std::move(*tap)));
  }
  Result<std::unique_ptr<Tap>> reopenTap(const std::string& name) override {
    auto tap = TapDevice::reopen(name);
    if (!tap.ok()) return tap.error();
    return std::unique_ptr<Tap>(std::make_unique<HostTap>(std::move(*tap)));
  }
  Result<void> plumb(const std::string& tapName, const Lease& lease,
                     const std::string& mac) override {
    return HostNetwork::plumb(tapName, lease, mac);
  }
  Result<void> unplumb(const std::string& tapName, const Lease& lease) override {
    return HostNetwork::unplumb(tapName, lease);
  }
  std::string macFor(const std::string& address) const override {
    return HostNetwork::macFor(address);
  }

 private:
  AddressPool pool_;  // its methods are thread- and process-safe (lease files)
};

}  // namespace

Result<std::unique_ptr<NetworkBackend>> makeHostNetworkBackend(
    const std::filesystem::path& leaseDir, const std::string& subnetCidr) {
  auto pool = AddressPool::open(leaseDir, subnetCidr);
  if (!pool.ok()) return pool.error().wrap("address pool");
  return std::unique_ptr<NetworkBackend>(std::make_unique<HostNetworkBackend>(std::move(*pool)));
}

}  // namespace s2z::agent
