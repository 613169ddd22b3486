// Host-side plumbing for one VM on its tap, in the current network namespace,
// through rtnetlink (agent/rtnetlink.h).
#pragma once

#include <string>

#include "agent/address_pool.h"
#include "common/result.h"

namespace s2z::agent {

class HostNetwork {
 public:
  // Puts gateway/32 on the tap, a route <vm>/32 dev <tap> src <gateway>, and
  // a PERMANENT neighbour <vm> lladdr <mac>. The neighbour entry matters:
  // without it a SYN to a sleeping VM never reaches the tap (ARP fails first).
  // Idempotent (replaces existing entries). Pre: the tap exists.
  // Fails: kNotFound if the tap is missing, kInvalidArgument for bad
  // addresses/mac, kSystem with the kernel's errno otherwise.
  static Result<void> plumb(const std::string& tapName, const Lease& lease,
                            const std::string& mac);

  // Removes neighbour, route and address. Idempotent: ok if any (or the tap
  // itself) is already gone.
  static Result<void> unplumb(const std::string& tapName, const Lease& lease);

  // Deterministic locally-administered MAC 52:54:00:xx:xx:xx built from the
  // low three bytes of the IPv4 address. An unparsable address gives
  // 52:54:00:00:00:00.
  static std::string macFor(const std::string& address);
};

}  // namespace s2z::agent
