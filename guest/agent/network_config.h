// The guest's network from the standard kernel parameter the driver passes:
// ip=<addr>::<gateway>:<netmask>::eth0:off, plus s2z.mtu=<bytes> when the
// link's MTU is not Ethernet's 1500 (a CNI network's, which ip= cannot carry:
// the kernel takes an MTU only from DHCP). The kernel's own autoconfiguration
// cannot do it (virtio_net is a module here), so the agent applies it with
// ioctls: no busybox, no netlink library.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"

namespace s2z::guest {

struct IpConfig {
  std::string address;
  std::string gateway;  // may be empty (no routes) and may lie outside netmask
  std::string netmask;
  std::string device = "eth0";
  unsigned mtu = 0;  // 0: leave the device's own (1500)
};

// Parses ip= (and s2z.mtu=) out of a kernel command line; nullopt when there
// is no ip= or it is not a static configuration (ip=dhcp, ip=off). An MTU
// outside 68..65535 is ignored.
std::optional<IpConfig> parseIpParameter(const std::string& cmdline);

// Brings lo up.
Result<void> bringUpLoopback();

// Waits up to 5 s for the device, sets MTU, address and netmask, brings it up,
// then adds a host route to the gateway (/32 on the device) and the default
// route via it: the host route makes a gateway outside the netmask reachable.
Result<void> configureInterface(const IpConfig& config);

}  // namespace s2z::guest
