#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>

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
  Result<void> divert() override { return device_.divert(); }
  void commitDivert() override { device_.commitDivert(); }
  Result<void> revertDivert() override { return device_.revertDivert(); }
  size_t discardQueued() override { return device_.discardQueued(); }

 private:
  TapDevice device_;
};

// The fd number of `holder` whose tun file is attached to tap `name`
// (/proc/<pid>/fdinfo shows "iff:\t<name>" for tun files); -1 if none.
int findTunFd(pid_t holder, const std::string& name) {
  std::error_code ec;
  std::filesystem::path dir = "/proc/" + std::to_string(holder) + "/fdinfo";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line == "iff:\t" + name) return std::atoi(entry.path().filename().c_str());
    }
  }
  return -1;
}

Result<std::unique_ptr<Tap>> adoptFrom(pid_t holder, const std::string& name) {
  int remote = findTunFd(holder, name);
  if (remote < 0) {
    return makeError(ErrorCode::kNotFound,
                     "process " + std::to_string(holder) + " holds no fd of tap " + name);
  }
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, holder, 0)));
  if (!pidfd) return systemError("pidfd_open " + std::to_string(holder));
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), remote, 0)));
  if (!fd) return systemError("pidfd_getfd " + std::to_string(holder) + "/" + std::to_string(remote));
  auto tap = TapDevice::adopt(std::move(fd), name);
  if (!tap.ok()) return tap.error();
  return std::unique_ptr<Tap>(std::make_unique<HostTap>(std::move(*tap)));
}

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
  Result<std::unique_ptr<Tap>> adoptTap(const std::string& name, pid_t holder) override {
    return adoptFrom(holder, name);
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
