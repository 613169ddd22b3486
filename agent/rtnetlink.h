// A small rtnetlink client (NETLINK_ROUTE) for the few requests the agent
// needs: addresses, routes and neighbours on one interface, and link queries.
// Each request is sent with NLM_F_ACK and the kernel's answer (an nlmsgerr)
// becomes the Result. Acts on the network namespace the socket was opened in.
#pragma once

#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

// Parses dotted IPv4 into network byte order; kInvalidArgument otherwise.
Result<uint32_t> parseIpv4(const std::string& text);
std::string formatIpv4(uint32_t addrBe);

struct NeighbourEntry {
  uint32_t addressBe = 0;
  uint8_t lladdr[6] = {};
  uint16_t state = 0;  // NUD_*
};

class RtNetlink {
 public:
  // Opens a NETLINK_ROUTE socket in the current netns. Fails: kSystem.
  static Result<RtNetlink> open();

  // ifindex of `name`; kNotFound if absent.
  static Result<uint32_t> ifindex(const std::string& name);

  // Link flags: IFF_UP set/cleared via RTM_NEWLINK. kNotFound if absent.
  Result<void> setLinkUp(uint32_t ifindex, bool up);

  // RTM_NEWADDR/RTM_DELADDR for addr/prefix on ifindex. add replaces;
  // del is ok if absent (EADDRNOTAVAIL / ENODEV ignored).
  Result<void> addAddress(uint32_t ifindex, uint32_t addrBe, int prefix);
  Result<void> delAddress(uint32_t ifindex, uint32_t addrBe, int prefix);

  // RTM_NEWROUTE dst/32 dev ifindex src srcBe (main table, link scope),
  // NLM_F_REPLACE; del is ok if absent (ESRCH).
  Result<void> addHostRoute(uint32_t ifindex, uint32_t dstBe, uint32_t srcBe);
  Result<void> delHostRoute(uint32_t ifindex, uint32_t dstBe);

  // RTM_NEWNEIGH NUD_PERMANENT, NLM_F_REPLACE; del ok if absent (ENOENT).
  Result<void> addPermanentNeighbour(uint32_t ifindex, uint32_t addrBe, const uint8_t mac[6]);
  Result<void> delNeighbour(uint32_t ifindex, uint32_t addrBe);

  // IPv4 neighbours on ifindex (RTM_GETNEIGH dump); used by tests and checks.
  Result<std::vector<NeighbourEntry>> neighbours(uint32_t ifindex);
  // Destinations (network order) of main-table IPv4 /32 routes via ifindex.
  Result<std::vector<uint32_t>> hostRoutes(uint32_t ifindex);

 private:
  explicit RtNetlink(UniqueFd fd) : fd_(std::move(fd)) {}
  // Sends one request (nlmsghdr at buf) with NLM_F_ACK and waits for its ack.
  Result<void> request(void* msg, const char* what);
  // Sends a dump request and calls onMessage for each answer until NLMSG_DONE.
  template <typename F>
  Result<void> dump(void* msg, const char* what, F&& onMessage);

  UniqueFd fd_;
  uint32_t seq_ = 0;
};

}  // namespace s2z::agent
