// One IPv4 route of a VM's link other than the two that ip= already carries
// (the connected subnet and the default route): a CNI network's extra routes
// (host-local's "routes"), which the guest agent adds to the guest's eth0 so
// its routing table is the one CNI gave eth0.
#pragma once

#include <string>

namespace s2z::agent {

struct Ipv4Route {
  std::string destination;  // dotted network address
  int prefixLength = 0;     // 1..32 (the default route is ip='s gateway)
  std::string gateway;      // dotted; "" for a route on the link itself

  bool operator==(const Ipv4Route&) const = default;
};

// At most this many are told to a guest: each is a kernel parameter
// (s2z.route=, ~40 bytes) and x86's command line holds 2048 bytes in all.
constexpr size_t kMaxGuestRoutes = 24;

}  // namespace s2z::agent
