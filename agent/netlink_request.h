// A NETLINK_ROUTE socket with nested-attribute message building, for the
// group-network plumbing (agent/link_query.h, agent/tc_redirect.h): link,
// address and route queries and traffic-control objects. Acts on the
// network namespace of the thread that opened it (NetnsHandle::run).
#pragma once

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

// One request message being built; attributes may nest (beginNested /
// endNested return and take the nest's offset).
class NetlinkMessage {
 public:
  NetlinkMessage(uint16_t type, uint16_t flags, const void* body, size_t bodyLen);
  void attr(uint16_t type, const void* data, size_t len);
  void attrString(uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void attr32(uint16_t type, uint32_t v) { attr(type, &v, sizeof v); }
  size_t beginNested(uint16_t type);
  void endNested(size_t offset);
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }

 private:
  std::vector<char> buf_;  // operator new memory: aligned for nlmsghdr
};

class NetlinkSocket {
 public:
  // Opens the socket in the calling thread's netns. Fails: kSystem.
  static Result<NetlinkSocket> open();

  // Sends with NLM_F_ACK and waits for the kernel's answer; the error text
  // names `what` and carries the errno (and the kernel's extended ack).
  Result<void> request(NetlinkMessage& msg, const std::string& what);
  // Sends a dump request; onMessage sees each answer until NLMSG_DONE.
  Result<void> dump(NetlinkMessage& msg, const std::string& what,
                    const std::function<void(const nlmsghdr*)>& onMessage);

 private:
  explicit NetlinkSocket(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

// Calls f(rtattr*) for each attribute after a fixed body of bodyLen bytes.
void forEachAttribute(const nlmsghdr* h, size_t bodyLen, const std::function<void(const rtattr*)>& f);

}  // namespace s2z::agent
