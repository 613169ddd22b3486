// Nomad's group network (network { mode = "bridge" } or "cni/<name>") as the
// agent sees it: the allocation's network namespace, made by Nomad and CNI,
// that the VM joins instead of getting an address of its own, and the host
// ports portmap maps into it. See agent/group_network_backend.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace s2z::agent {

struct GroupHostPort {
  std::string hostIp;  // Nomad's PortMapping.host_ip (the node address)
  uint16_t port = 0;   // PortMapping.value: the host port portmap DNATs
};

struct GroupNetworkSpec {
  // TaskConfig.network_isolation_spec.path (/var/run/netns/<alloc id>);
  // empty: host networking (a tap and an address of the plugin's subnet).
  std::filesystem::path netnsPath;
  // Health checks with address_mode = "host" connect to these; while the VM
  // sleeps they are answered by the responder like checks of its address.
  std::vector<GroupHostPort> hostPorts;
  // eth0's tx queue length as CNI made it (a CNI veth has 0), learned at
  // the first join and kept in the instance record: adding our ingress qdisc
  // raises a 0 to 1000, so a plugin that joins again after a restart would
  // otherwise read our 1000 and leave it there at teardown. -1: not known yet.
  int64_t eth0TxQueueLen = -1;

  bool enabled() const { return !netnsPath.empty(); }
};

}  // namespace s2z::agent
