// Nomad's group network (network { mode = "bridge" }), built the way the
// Nomad client builds it, with Debian's real CNI plugins: the conflist of
// client/allocrunner/cni/bridge.go (bridge "nomad", 172.26.64.0/20,
// loopback, bridge + host-local, firewall with NOMAD-ADMIN, portmap with
// snat), the NOMAD-ADMIN accept rule the client adds first, one netns per
// allocation, and CNI ADD / CHECK / DEL through the plugin chain as libcni
// runs it for go-cni (prevResult from plugin to plugin on ADD, the cached
// result on CHECK and DEL, portMappings as runtimeConfig to portmap).
//
// Everything happens in the calling thread's network namespace (the test's
// stand-in host, where the bridge and iptables rules live) and the alloc
// namespaces this creates; nothing routes anywhere else. The only
// deviation from the client: host-local's dataDir is a directory of the
// test, not /var/run/cni.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/netns.h"
#include "common/result.h"
#include "tests/cni/cni_plugin_runner.h"

namespace s2z::cni_test {

inline constexpr const char* kBridgeName = "nomad";
inline constexpr const char* kBridgeSubnet = "172.26.64.0/20";

// One group port as Nomad maps it (cni.PortMapping, tcp and udp).
struct PortMapping {
  int hostPort = 0;       // the allocated port (PortMapping.value)
  int containerPort = 0;  // `to`
  std::string hostIp;     // the node address it is reachable on
};

// The conflist the client writes for mode = "bridge", with host-local's
// state in dataDir.
nlohmann::json nomadBridgeConflist(const std::string& dataDir, bool hairpinMode = true);

// Where the stand-in host is: the calling thread's netns (empty path) or
// the netns at `path`, entered by a helper thread for every command.
class HostSide {
 public:
  static Result<HostSide> at(const std::string& netnsPath);
  // Runs argv (runTool) or a CNI plugin (runCniPlugin) on the host side.
  Result<std::string> tool(const std::vector<std::string>& argv) const;
  Result<std::string> plugin(const std::string& type, const CniInvocation& call,
                             const std::string& config) const;

 private:
  std::shared_ptr<const agent::NetnsHandle> netns_;  // null: the calling thread's
};

// Adds the client's NOMAD-ADMIN rule (filter: -o nomad -d 172.26.64.0/20
// -j ACCEPT), idempotent, as the client does before every CNI ADD.
Result<void> ensureNomadAdminChain(const HostSide& host);

// A cni/<name> network of Debian's macvlan plugin (bridge mode), the kind
// with no host veth: its parent is one end of a veth pair made on `host`
// (s2zmparent); the other end (s2zmpeer) holds kMacvlanGateway, so the host
// side reaches an alloc through the parent like a host on its segment.
// Addresses from 192.168.77.0/24 (host-local, state in dataDir), a default
// route via kMacvlanGateway.
inline constexpr const char* kMacvlanGateway = "192.168.77.1";
Result<void> addMacvlanParent(const HostSide& host);
nlohmann::json macvlanConflist(const std::string& dataDir);

// One allocation's network: its netns /run/netns/<name> and the CNI result.
// The destructor runs CNI DEL (reverse order, cached result) and deletes the
// netns, also when a test fails.
class CniAlloc {
 public:
  // Creates the netns and runs CNI ADD for `allocId` with `ports`, the
  // plugins running on `host` (default: the calling thread's netns).
  static Result<std::unique_ptr<CniAlloc>> add(const std::string& allocId, const std::string& netnsName,
                                               const std::vector<PortMapping>& ports,
                                               const std::string& dataDir, HostSide host = {});
  // The same with another conflist (a cni/<name> network of the client's
  // cni_config_dir), e.g. macvlan.
  static Result<std::unique_ptr<CniAlloc>> addWith(nlohmann::json conflist, const std::string& allocId,
                                                   const std::string& netnsName,
                                                   const std::vector<PortMapping>& ports, HostSide host = {});
  ~CniAlloc();
  CniAlloc(const CniAlloc&) = delete;
  CniAlloc& operator=(const CniAlloc&) = delete;

  std::string netnsPath() const { return "/run/netns/" + netnsName_; }
  const std::string& netnsName() const { return netnsName_; }
  const std::string& allocId() const { return allocId_; }
  // eth0's address in the result (Nomad's AllocNetworkStatus.Address) and gateway.
  std::string address() const;
  std::string gateway() const;
  const nlohmann::json& result() const { return result_; }

  // CNI CHECK through the chain (what the client runs after a restart),
  // except portmap's, broken in Debian 12's plugins (nomad_bridge.cpp).
  Result<void> check() const;
  // CNI DEL through the chain; the netns stays (the destructor removes it).
  Result<void> del();

 private:
  CniAlloc(std::string allocId, std::string netnsName, std::vector<PortMapping> ports, std::string dataDir,
           HostSide host)
      : allocId_(std::move(allocId)), netnsName_(std::move(netnsName)), ports_(std::move(ports)),
        dataDir_(std::move(dataDir)), host_(std::move(host)) {}
  Result<void> addChain();
  // The config one plugin of the list gets (libcni's buildOneConfig).
  nlohmann::json pluginConfig(const nlohmann::json& plugin, const nlohmann::json& prevResult) const;
  std::string cniArgs() const;
  CniInvocation invocation(const std::string& command) const;

  std::string allocId_, netnsName_;
  std::vector<PortMapping> ports_;
  std::string dataDir_;
  HostSide host_;
  nlohmann::json conflist_;  // the network's plugin list
  nlohmann::json result_;   // the chain's final result (libcni caches it)
  bool added_ = false;
};

// Text of a command's output in the alloc's netns ("ip -d addr", "tc qdisc"),
// for the "left as CNI made it" comparisons.
Result<std::string> inNetns(const std::string& netnsName, const std::vector<std::string>& argv);

// What CNI made in the alloc's netns, as text: eth0 in detail, the links
// (a task's tap among them while it runs), addresses, routes and eth0's
// qdiscs and ingress filters. Waits (up to 10 s) until no address is
// "tentative": IPv6 duplicate address detection of eth0's link-local
// address takes a second or two after CNI ADD.
std::string netnsState(const CniAlloc& alloc);

}  // namespace s2z::cni_test
