#include "agent/host_network.h"

#include <arpa/inet.h>

#include <cstdio>

#include "agent/rtnetlink.h"

namespace s2z::agent {
namespace {

Result<void> parseMac(const std::string& text, uint8_t out[6]) {
  unsigned b[6];
  char extra;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                  &b[5], &extra) != 6)
    return makeError(ErrorCode::kInvalidArgument, "bad MAC address '" + text + "'");
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(b[i]);
  return okResult();
}

}  // namespace

Result<void> HostNetwork::plumb(const std::string& tapName, const Lease& lease,
                                const std::string& mac) {
  const std::string ctx = "plumb " + tapName;
  auto vm = parseIpv4(lease.address);
  if (!vm.ok()) return vm.error().wrap(ctx);
  auto gw = parseIpv4(lease.gateway);
  if (!gw.ok()) return gw.error().wrap(ctx);
  uint8_t lladdr[6];
  S2Z_TRY(parseMac(mac, lladdr), ctx);
  auto index = RtNetlink::ifindex(tapName);
  if (!index.ok()) return index.error().wrap(ctx);
  auto nl = RtNetlink::open();
  if (!nl.ok()) return nl.error().wrap(ctx);

  // gateway/32 rather than the subnet prefix: several taps share the gateway
  // address, and the per-VM /32 route below is what steers traffic.
  S2Z_TRY(nl->addAddress(*index, *gw, 32), ctx);
  S2Z_TRY(nl->addHostRoute(*index, *vm, *gw), ctx);
  // PERMANENT: a sleeping VM cannot answer ARP; without this the first SYN is
  // never sent (ARP fails) instead of queueing in the held tap.
  S2Z_TRY(nl->addPermanentNeighbour(*index, *vm, lladdr), ctx);
  return okResult();
}

Result<void> HostNetwork::unplumb(const std::string& tapName, const Lease& lease) {
  const std::string ctx = "unplumb " + tapName;
  auto index = RtNetlink::ifindex(tapName);
  // The tap going away takes its address, route and neighbour with it.
  if (!index.ok() && index.error().code == ErrorCode::kNotFound) return okResult();
  if (!index.ok()) return index.error().wrap(ctx);
  auto vm = parseIpv4(lease.address);
  if (!vm.ok()) return vm.error().wrap(ctx);
  auto gw = parseIpv4(lease.gateway);
  if (!gw.ok()) return gw.error().wrap(ctx);
  auto nl = RtNetlink::open();
  if (!nl.ok()) return nl.error().wrap(ctx);
  S2Z_TRY(nl->delNeighbour(*index, *vm), ctx);
  S2Z_TRY(nl->delHostRoute(*index, *vm), ctx);
  S2Z_TRY(nl->delAddress(*index, *gw, 32), ctx);
  return okResult();
}

std::string HostNetwork::macFor(const std::string& address) {
  in_addr a{};
  uint32_t host = inet_pton(AF_INET, address.c_str(), &a) == 1 ? ntohl(a.s_addr) : 0;
  char out[18];
  std::snprintf(out, sizeof out, "52:54:00:%02x:%02x:%02x", (host >> 16) & 0xff, (host >> 8) & 0xff,
                host & 0xff);
  return out;
}

}  // namespace s2z::agent
