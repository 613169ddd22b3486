// The guest's network from the standard kernel parameter the driver passes:
// ip=<addr>::<gateway>:<netmask>::eth0:off, plus s2z.mtu=<bytes> when the
// link's MTU is not Ethernet's 1500 and one s2z.route=<dst>/<len>[,<gateway>]
// per route besides the default one (a CNI network's, which ip= cannot carry:
// the kernel takes an MTU only from DHCP, and no routes at all). The kernel's own autoconfiguration
// cannot do it (virtio_net is a module here), so the agent applies it with
// ioctls: no busybox, no netlink library.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::guest {

struct IpRoute {
  std::string destination;  // dotted network address
  std::string netmask;      // dotted
  std::string gateway;      // dotted; "" for a route on the link itself

  bool operator==(const IpRoute&) const = default;
};

struct IpConfig {
  std::string address;
  std::string gateway;  // may be empty (no routes) and may lie outside netmask
  std::string netmask;
  std::string device = "eth0";
  unsigned mtu = 0;  // 0: leave the device's own (1500)
  std::vector<IpRoute> routes;  // in command-line order (the driver puts on-link ones first)
};

// Parses ip= (and s2z.mtu=, s2z.route=) out of a kernel command line; nullopt
// when there is no ip= or it is not a static configuration (ip=dhcp, ip=off).
// An MTU outside 68..65535 is ignored, and so is a route that does not parse,
// has a prefix outside 1..32 or host bits set in its destination (the kernel
// would refuse it).
std::optional<IpConfig> parseIpParameter(const std::string& cmdline);

// Brings lo up.
Result<void> bringUpLoopback();

// Waits up to 5 s for the device, sets MTU, address and netmask, brings it up,
// then adds a host route to the gateway (/32 on the device) and the default
// route via it: the host route makes a gateway outside the netmask reachable.
// Then the other routes, in order.
Result<void> configureInterface(const IpConfig& config);

}  // namespace s2z::guest
