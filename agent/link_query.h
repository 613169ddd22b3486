// What the group-network plumbing reads from (and sets on) a network
// namespace's links: the CNI-made eth0's MAC, MTU, IPv4 address, default
// gateway, other routes and its veth peer. Everything acts on the calling thread's
// network namespace (run it inside NetnsHandle::run for an alloc's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/ipv4_route.h"
#include "common/result.h"

namespace s2z::agent {

struct LinkFacts {
  uint32_t ifindex = 0;
  std::string mac;           // "aa:bb:cc:dd:ee:ff"
  uint32_t mtu = 0;
  uint32_t txQueueLen = 0;   // IFLA_TXQLEN (a CNI veth has 0)
  // IFLA_LINK: a veth's peer ifindex, in the peer's namespace (the host's
  // for a CNI bridge veth); 0 when the device has none.
  uint32_t peerIfindex = 0;
  bool peerInOtherNamespace = false;  // IFLA_LINK_NETNSID present
  bool hasMaster = false;             // IFLA_MASTER present (a bridge port)
  // IFF_NOARP: the device neither sends nor answers ARP (an ipvlan in l3 or
  // l3s mode); a guest bridged to it could not resolve its gateway.
  bool noArp = false;
  std::string kind;                   // IFLA_INFO_KIND: "veth", "macvlan", "tun"...
};

struct Ipv4Facts {
  std::string address;   // dotted
  int prefixLength = 0;
  std::string gateway;   // of the main table's default route via the link; "" if none
  // The main table's other unicast routes via the link, on-link ones first
  // (a gateway route may need one to reach its gateway); the kernel's own
  // route to the connected subnet is not among them.
  std::vector<Ipv4Route> routes;
};

// Link facts of `name`. Fails: kNotFound if absent, kSystem otherwise.
Result<LinkFacts> queryLink(const std::string& name);
// The same by index.
Result<LinkFacts> queryLink(uint32_t ifindex);

// The first IPv4 address on ifindex, the default route's gateway through it
// and its other routes. Fails: kNotFound if the link has no IPv4 address.
Result<Ipv4Facts> queryIpv4(uint32_t ifindex);

// Sets the link's MTU. Fails: kSystem (kNotFound if absent).
Result<void> setLinkMtu(uint32_t ifindex, uint32_t mtu);
// Sets the link's tx queue length (IFLA_TXQLEN). Fails like setLinkMtu.
Result<void> setLinkTxQueueLen(uint32_t ifindex, uint32_t length);

// "aa:bb:..." from 6 bytes.
std::string formatMac(const unsigned char* mac);

}  // namespace s2z::agent
