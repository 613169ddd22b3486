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

// What joining an alloc's netns means for the task's scale to zero.
struct GroupJoin {
  // The bridge plugin's layout: eth0 is a veth whose host end, in the
  // plugin's netns, sees every frame with its health-check mark intact, so
  // the task can sleep. A macvlan or ipvlan eth0 has no such end (the mark is
  // scrubbed when a frame enters the netns, and the parent link sees other
  // devices' traffic too): the VM joins eth0 the same way but never sleeps,
  // since nothing could tell a health check from a request that must wake it.
  bool healthChecksVisible = true;
  std::string why;  // when !healthChecksVisible: for the task's event
};

}  // namespace s2z::agent
