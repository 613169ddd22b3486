#include "agent/group_network_backend.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/link_query.h"
#include "agent/netns.h"
#include "agent/rtnetlink.h"
#include "agent/run_dir.h"
#include "agent/tap_device.h"
#include "agent/tc_redirect.h"
#include "bpf/kernel_scale_to_zero.h"

namespace s2z::agent {
namespace {

// Nomad names the alloc's interface with the prefix "eth" and index 0
// (client/allocrunner/networking_bridge_linux.go); CNI networks get the same.
constexpr const char* kAllocInterface = "eth0";

std::string kindOf(const LinkFacts& link) { return link.kind.empty() ? "device" : link.kind; }

std::string netmaskOf(int prefix) {
  uint32_t mask = prefix <= 0 ? 0 : htonl(~uint32_t{0} << (32 - prefix));
  return formatIpv4(mask);
}

// One task's group network: its netns and what CNI made there.
struct GroupSession {
  std::string taskId, tapName;
  std::shared_ptr<const NetnsHandle> netns;
  LinkFacts eth0;
  Ipv4Facts ipv4;
  // The host end of eth0's veth, in the plugin's netns; 0 when there is none
  // (join.healthChecksVisible is false).
  uint32_t hostIfindex = 0;
  GroupJoin join;
  std::vector<GroupHostPort> hostPorts;

  Lease lease() const {
    return Lease{ipv4.address, ipv4.gateway, ipv4.prefixLength, netmaskOf(ipv4.prefixLength),
                 eth0.mtu, ipv4.routes};
  }
};

// A tap inside the alloc's netns. Everything that names the device or sends
// on it runs inside the netns (TUNSETIFF looks names up in the opener's
// netns); fds and ioctls on them work from anywhere.
class GroupTap : public Tap {
 public:
  GroupTap(TapDevice device, std::shared_ptr<const NetnsHandle> netns, uint32_t hostIfindex)
      : device_(std::move(device)), netns_(std::move(netns)), hostIfindex_(hostIfindex) {}
  int fd() const override { return device_.fd(); }
  const std::string& name() const override { return device_.name(); }
  // The instance's key in the BPF maps: the host end of the alloc veth (the
  // tap's own ifindex is in the alloc's netns and means nothing here); 0
  // when eth0 has no host end, and the task then has no BPF registration.
  uint32_t ifindex() const override { return hostIfindex_; }
  Result<void> destroy() override { return device_.destroy(); }
  Result<void> divert() override {
    return netns_->run([&] { return device_.divert(); });
  }
  void commitDivert() override { device_.commitDivert(); }
  Result<void> revertDivert() override {
    return netns_->run([&] { return device_.revertDivert(); });
  }
  size_t discardQueued() override { return device_.discardQueued(); }

 private:
  TapDevice device_;
  std::shared_ptr<const NetnsHandle> netns_;
  uint32_t hostIfindex_;
};

// The fd number of `holder` whose tun file is attached to tap `name`.
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

Result<GroupSession> openSession(const std::string& taskId, const GroupNetworkSpec& group) {
  auto opened = NetnsHandle::open(group.netnsPath);
  if (!opened.ok()) return opened.error();
  GroupSession s;
  s.taskId = taskId;
  s.tapName = tapNameFor(taskId);
  s.netns = std::make_shared<const NetnsHandle>(std::move(*opened));
  s.hostPorts = group.hostPorts;
  const std::string where = std::string(kAllocInterface) + " in " + group.netnsPath.string();
  auto eth0 = s.netns->run([] { return queryLink(kAllocInterface); });
  if (!eth0.ok()) return eth0.error().wrap(where);
  s.eth0 = *eth0;
  auto ipv4 = s.netns->run([&] { return queryIpv4(s.eth0.ifindex); });
  if (!ipv4.ok()) return ipv4.error().wrap(where);
  s.ipv4 = *ipv4;
  if (s.ipv4.routes.size() > kMaxGuestRoutes) {
    return makeError(ErrorCode::kFailedPrecondition,
                     where + " has " + std::to_string(s.ipv4.routes.size()) +
                         " routes besides the default one; a guest is told at most " +
                         std::to_string(kMaxGuestRoutes) + " (on its kernel command line)");
  }
  // The guest ARPs for its gateway through eth0: a device that does no ARP
  // (ipvlan l3/l3s drops it on the way out) cannot carry its traffic.
  if (s.eth0.noArp) {
    return makeError(ErrorCode::kFailedPrecondition,
                     where + " is a " + kindOf(s.eth0) +
                         " that does no ARP (an ipvlan in mode l3 or l3s?): a VM joined to it could "
                         "not resolve its gateway; use a bridge, macvlan or ipvlan l2 network");
  }
  // Only a veth has a host end where health marks are still visible (a
  // macvlan's IFLA_LINK names its parent, which sees other devices' frames
  // too, and the mark is scrubbed once a frame enters the netns). The peer's
  // index is in its own netns: it must be a veth of ours whose peer is eth0.
  std::string noHostEnd;
  if (s.eth0.kind != "veth" || s.eth0.peerIfindex == 0 || !s.eth0.peerInOtherNamespace) {
    noHostEnd = where + " is a " + kindOf(s.eth0) + ", not a veth with its other end outside the netns";
  } else if (auto host = queryLink(s.eth0.peerIfindex);
             !host.ok() || host->kind != "veth" || host->peerIfindex != s.eth0.ifindex ||
             !host->peerInOtherNamespace) {
    noHostEnd = "the veth peer of " + where + " is not in the plugin's network namespace";
  }
  if (!noHostEnd.empty()) {
    s.join.healthChecksVisible = false;
    s.join.why = noHostEnd +
                 ": no device the plugin sees carries the task's traffic with health-check marks "
                 "intact, so a health check could not be told from a request; the task stays awake";
    return s;
  }
  s.hostIfindex = s.eth0.peerIfindex;
  return s;
}

class GroupNetworkBackend final : public NetworkBackend {
 public:
  GroupNetworkBackend(std::unique_ptr<NetworkBackend> host, bpf::KernelScaleToZero* kernel)
      : host_(std::move(host)), kernel_(kernel) {}

  Result<GroupJoin> joinGroup(const std::string& taskId, GroupNetworkSpec& group) override {
    auto session = openSession(taskId, group);
    if (!session.ok()) return session.error().wrap("group network");
    // Joined before (a plugin restart): CNI's length is the recorded one.
    if (group.eth0TxQueueLen >= 0) session->eth0.txQueueLen = static_cast<uint32_t>(group.eth0TxQueueLen);
    group.eth0TxQueueLen = session->eth0.txQueueLen;
    spdlog::info("group network: task {} joins {}: {}/{} via {}, mac {}, mtu {}, host veth ifindex {}",
                 taskId, group.netnsPath.string(), session->ipv4.address, session->ipv4.prefixLength,
                 session->ipv4.gateway, session->eth0.mac, session->eth0.mtu, session->hostIfindex);
    if (!session->join.healthChecksVisible) spdlog::warn("group network: task {}: {}", taskId, session->join.why);
    GroupJoin join = session->join;
    std::lock_guard lock(mutex_);
    sessions_[taskId] = std::make_shared<GroupSession>(std::move(*session));
    return join;
  }

  Result<Lease> allocateAddress(const std::string& owner) override {
    if (auto s = byTask(owner)) return s->lease();
    return host_->allocateAddress(owner);
  }
  Result<Lease> reclaimAddress(const std::string& address, const std::string& owner) override {
    if (auto s = byTask(owner)) {
      if (s->ipv4.address != address) {
        return makeError(ErrorCode::kFailedPrecondition,
                         "group network: eth0 has " + s->ipv4.address + ", the record says " + address);
      }
      return s->lease();
    }
    return host_->reclaimAddress(address, owner);
  }
  Result<void> releaseAddress(const std::string& address) override {
    std::lock_guard lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second->ipv4.address == address) {
        sessions_.erase(it);  // CNI's address: nothing to give back
        return okResult();
      }
    }
    return host_->releaseAddress(address);
  }

  Result<std::unique_ptr<Tap>> createTap(const std::string& name) override {
    auto s = byTap(name);
    if (!s) return host_->createTap(name);
    auto tap = s->netns->run([&] { return TapDevice::create(name); });
    if (!tap.ok()) return tap.error().wrap("in " + s->netns->path().string());
    return wrap(std::move(*tap), *s);
  }
  Result<std::unique_ptr<Tap>> reopenTap(const std::string& name) override {
    auto s = byTap(name);
    if (!s) return host_->reopenTap(name);
    auto tap = s->netns->run([&] { return TapDevice::reopen(name); });
    if (!tap.ok()) return tap.error().wrap("in " + s->netns->path().string());
    return wrap(std::move(*tap), *s);
  }
  Result<std::unique_ptr<Tap>> adoptTap(const std::string& name, pid_t holder) override {
    auto s = byTap(name);
    if (!s) return host_->adoptTap(name, holder);
    int remote = findTunFd(holder, name);
    if (remote < 0) {
      return makeError(ErrorCode::kNotFound,
                       "process " + std::to_string(holder) + " holds no fd of tap " + name);
    }
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, holder, 0)));
    if (!pidfd) return systemError("pidfd_open " + std::to_string(holder));
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), remote, 0)));
    if (!fd) return systemError("pidfd_getfd " + std::to_string(holder));
    auto tap = s->netns->run([&] { return TapDevice::adopt(std::move(fd), name); });
    if (!tap.ok()) return tap.error();
    return wrap(std::move(*tap), *s);
  }

  Result<void> plumb(const std::string& tapName, const Lease& lease, const std::string& mac) override {
    auto s = byTap(tapName);
    if (!s) return host_->plumb(tapName, lease, mac);
    const uint32_t eth0 = s->eth0.ifindex, mtu = s->eth0.mtu, txQueueLen = s->eth0.txQueueLen;
    auto joined = s->netns->run([&]() -> Result<void> {
      auto tap = RtNetlink::ifindex(tapName);
      if (!tap.ok()) return tap.error();
      if (mtu > 0) S2Z_TRY(setLinkMtu(*tap, mtu), "tap mtu");
      // A plumbing left by an earlier attempt of this task goes first.
      S2Z_TRY(removeIngress(eth0), "eth0");
      S2Z_TRY(removeIngress(*tap), tapName);
      auto in = addIngressRedirect(eth0, *tap);
      auto out = in.ok() ? addIngressRedirect(*tap, eth0) : okResult();
      if (in.ok() && out.ok()) return okResult();
      // Half a join is none: the caller undoes only a plumb that succeeded.
      (void)removeIngress(eth0);
      (void)setLinkTxQueueLen(eth0, txQueueLen);
      return in.ok() ? out.error().wrap(tapName + " -> eth0") : in.error().wrap("eth0 -> " + tapName);
    });
    if (!joined.ok()) return joined.error().wrap("group network in " + s->netns->path().string());
    if (kernel_ && s->hostIfindex != 0) {
      for (const auto& p : s->hostPorts) {
        auto addr = parseIpv4(p.hostIp);
        if (!addr.ok() || *addr == 0 || p.port == 0) continue;
        S2Z_TRY(kernel_->addHostPort(*addr, p.port, s->hostIfindex), "group network: host port");
      }
    }
    return okResult();
  }
  Result<void> unplumb(const std::string& tapName, const Lease& lease) override {
    auto s = byTap(tapName);
    if (!s) return host_->unplumb(tapName, lease);
    Result<void> first;
    if (kernel_ && s->hostIfindex != 0) {
      for (const auto& p : s->hostPorts) {
        auto addr = parseIpv4(p.hostIp);
        if (!addr.ok() || *addr == 0 || p.port == 0) continue;
        if (auto r = kernel_->removeHostPort(*addr, p.port); !r.ok() && first.ok()) first = r;
      }
    }
    // eth0 back as CNI made it; the tap's qdisc goes with the tap. Adding
    // the ingress qdisc raised eth0's tx queue length from CNI's 0 to 1000
    // (the kernel does that to a 0-length device getting a qdisc; measured
    // on 6.18): set it back.
    auto removed = s->netns->run([&]() -> Result<void> {
      S2Z_TRY(removeIngress(s->eth0.ifindex), "ingress qdisc");
      S2Z_TRY(setLinkTxQueueLen(s->eth0.ifindex, s->eth0.txQueueLen), "tx queue length");
      return okResult();
    });
    if (!removed.ok()) return removed.error().wrap("group network: eth0");
    return first;
  }
  std::string macFor(const std::string& address) const override {
    std::lock_guard lock(mutex_);
    for (const auto& [id, s] : sessions_) {
      // The guest's NIC takes eth0's MAC: the bridge, its FDB and every
      // neighbour already know eth0's MAC for this address (Kata does the
      // same "to avoid any firewall issues").
      if (s->ipv4.address == address) return s->eth0.mac;
    }
    return host_->macFor(address);
  }

 private:
  std::shared_ptr<const GroupSession> byTask(const std::string& taskId) const {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(taskId);
    return it == sessions_.end() ? nullptr : it->second;
  }
  std::shared_ptr<const GroupSession> byTap(const std::string& tapName) const {
    std::lock_guard lock(mutex_);
    for (const auto& [id, s] : sessions_)
      if (s->tapName == tapName) return s;
    return nullptr;
  }
  static Result<std::unique_ptr<Tap>> wrap(TapDevice device, const GroupSession& s) {
    return std::unique_ptr<Tap>(std::make_unique<GroupTap>(std::move(device), s.netns, s.hostIfindex));
  }

  std::unique_ptr<NetworkBackend> host_;
  bpf::KernelScaleToZero* kernel_;
  mutable std::mutex mutex_;  // guards sessions_
  std::map<std::string, std::shared_ptr<GroupSession>> sessions_;  // by task id
};

}  // namespace

std::unique_ptr<NetworkBackend> makeGroupNetworkBackend(std::unique_ptr<NetworkBackend> host,
                                                        bpf::KernelScaleToZero* kernel) {
  return std::make_unique<GroupNetworkBackend>(std::move(host), kernel);
}

}  // namespace s2z::agent
