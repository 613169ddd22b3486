#include "agent/rtnetlink.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>

namespace s2z::agent {
namespace {

// Every request we build fits easily: header + one fixed struct + a few attrs.
constexpr size_t kRequestSize = 256;
// Large enough for a full dump batch from the kernel (it sends at most a page
// or two per recvmsg unless told otherwise; 32 KiB leaves slack).
constexpr size_t kReceiveSize = 32768;

// A netlink request being built in a fixed, aligned buffer.
struct Request {
  alignas(NLMSG_ALIGNTO) std::array<char, kRequestSize> buf{};
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf.data()); }

  template <typename Body>
  Body* begin(uint16_t type, uint16_t flags) {
    hdr()->nlmsg_len = NLMSG_LENGTH(sizeof(Body));
    hdr()->nlmsg_type = type;
    hdr()->nlmsg_flags = NLM_F_REQUEST | flags;
    return static_cast<Body*>(NLMSG_DATA(hdr()));
  }
  void attr(uint16_t type, const void* data, size_t len) {
    auto* rta = reinterpret_cast<rtattr*>(buf.data() + NLMSG_ALIGN(hdr()->nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = RTA_LENGTH(len);
    std::memcpy(RTA_DATA(rta), data, len);
    hdr()->nlmsg_len = NLMSG_ALIGN(hdr()->nlmsg_len) + RTA_ALIGN(rta->rta_len);
  }
  void attr32(uint16_t type, uint32_t v) { attr(type, &v, sizeof v); }
};

// Walks the attributes that follow a fixed body in a received message.
template <typename Body, typename F>
void forEachAttr(const nlmsghdr* h, F&& f) {
  const auto* body = static_cast<const Body*>(NLMSG_DATA(h));
  const rtattr* rta = reinterpret_cast<const rtattr*>(
      reinterpret_cast<const char*>(body) + NLMSG_ALIGN(sizeof(Body)));
  int len = static_cast<int>(h->nlmsg_len) - NLMSG_LENGTH(sizeof(Body));
  for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) f(rta);
}

// Turns an ignorable errno into success for idempotent deletes.
Result<void> okIf(Result<void> r, std::initializer_list<int> ignored) {
  if (r.ok()) return r;
  for (int e : ignored)
    if (r.error().errnum == e) return okResult();
  return r;
}

}  // namespace

Result<uint32_t> parseIpv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1)
    return makeError(ErrorCode::kInvalidArgument, "bad IPv4 address '" + text + "'");
  return a.s_addr;
}

std::string formatIpv4(uint32_t addrBe) {
  char out[INET_ADDRSTRLEN] = {};
  in_addr a{addrBe};
  inet_ntop(AF_INET, &a, out, sizeof out);
  return out;
}

Result<RtNetlink> RtNetlink::open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return systemError("rtnetlink: socket");
  // Ask for extended acks so the kernel's error text (if any) is attached;
  // harmless if the kernel ignores it.
  int one = 1;
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) < 0)
    return systemError("rtnetlink: bind");
  return RtNetlink(std::move(fd));
}

Result<uint32_t> RtNetlink::ifindex(const std::string& name) {
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) {
    if (errno == ENODEV || errno == ENXIO)
      return Error{ErrorCode::kNotFound, errno, "interface " + name + " not found"};
    return systemError("if_nametoindex " + name);
  }
  return static_cast<uint32_t>(idx);
}

// Extracts the text of an NLMSGERR_ATTR_MSG extended ack, if present.
static std::string extAckText(const nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  // Without NLM_F_CAPPED the original request follows the nlmsgerr.
  size_t skip = sizeof(nlmsgerr);
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) skip += err->msg.nlmsg_len - sizeof(nlmsghdr);
  const char* start = reinterpret_cast<const char*>(err) + NLMSG_ALIGN(skip);
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(start - reinterpret_cast<const char*>(h));
  for (auto* rta = reinterpret_cast<const rtattr*>(start); RTA_OK(rta, len);
       rta = RTA_NEXT(rta, len)) {
    if (rta->rta_type == NLMSGERR_ATTR_MSG) return static_cast<const char*>(RTA_DATA(rta));
  }
  return {};
}

Result<void> RtNetlink::request(void* msg, const char* what) {
  auto* h = static_cast<nlmsghdr*>(msg);
  h->nlmsg_flags |= NLM_F_ACK;
  h->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), h, h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0)
    return systemError(std::string("rtnetlink ") + what + ": send");

  std::vector<char> storage(kReceiveSize);  // new[] memory is aligned for nlmsghdr
  char* buf = storage.data();
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, kReceiveSize, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return systemError(std::string("rtnetlink ") + what + ": recv");
    }
    int len = static_cast<int>(n);
    for (auto* r = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != seq_ || r->nlmsg_type != NLMSG_ERROR) continue;  // stale
      const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(r));
      if (err->error == 0) return okResult();
      std::string text = std::string("rtnetlink ") + what;
      if (auto ext = extAckText(r); !ext.empty()) text += " (" + ext + ")";
      return Error{ErrorCode::kSystem, -err->error, text};
    }
  }
}

template <typename F>
Result<void> RtNetlink::dump(void* msg, const char* what, F&& onMessage) {
  auto* h = static_cast<nlmsghdr*>(msg);
  h->nlmsg_flags |= NLM_F_DUMP;
  h->nlmsg_seq = ++seq_;
  if (::send(fd_.get(), h, h->nlmsg_len, 0) < 0)
    return systemError(std::string("rtnetlink ") + what + ": send");
  std::vector<char> storage(kReceiveSize);  // new[] memory is aligned for nlmsghdr
  char* buf = storage.data();
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, kReceiveSize, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return systemError(std::string("rtnetlink ") + what + ": recv");
    }
    int len = static_cast<int>(n);
    for (auto* r = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != seq_) continue;
      if (r->nlmsg_type == NLMSG_DONE) return okResult();
      if (r->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(r));
        return Error{ErrorCode::kSystem, -err->error, std::string("rtnetlink ") + what};
      }
      onMessage(r);
    }
  }
}

Result<void> RtNetlink::setLinkUp(uint32_t ifindex, bool up) {
  Request req;
  auto* ifi = req.begin<ifinfomsg>(RTM_NEWLINK, 0);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(ifindex);
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  auto r = request(req.hdr(), "set link up");
  if (!r.ok() && r.error().errnum == ENODEV)
    return Error{ErrorCode::kNotFound, ENODEV, r.error().message};
  return r;
}

// Shared by add/del: an IPv4 address with a /prefix on ifindex.
static void buildAddr(Request& req, uint16_t type, uint16_t flags, uint32_t ifindex,
                      uint32_t addrBe, int prefix) {
  auto* ifa = req.begin<ifaddrmsg>(type, flags);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = ifindex;
  req.attr32(IFA_LOCAL, addrBe);
  req.attr32(IFA_ADDRESS, addrBe);
}

Result<void> RtNetlink::addAddress(uint32_t ifindex, uint32_t addrBe, int prefix) {
  Request req;
  buildAddr(req, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, addrBe, prefix);
  return request(req.hdr(), "add address");
}

Result<void> RtNetlink::delAddress(uint32_t ifindex, uint32_t addrBe, int prefix) {
  Request req;
  buildAddr(req, RTM_DELADDR, 0, ifindex, addrBe, prefix);
  return okIf(request(req.hdr(), "delete address"), {EADDRNOTAVAIL, ENODEV});
}

// Shared by add/del: dst/32 in the main table, link scope (directly on the tap).
static rtmsg* buildRoute(Request& req, uint16_t type, uint16_t flags, uint32_t ifindex,
                         uint32_t dstBe) {
  auto* rt = req.begin<rtmsg>(type, flags);
  rt->rtm_family = AF_INET;
  rt->rtm_dst_len = 32;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_STATIC;
  rt->rtm_scope = RT_SCOPE_LINK;
  rt->rtm_type = RTN_UNICAST;
  req.attr32(RTA_DST, dstBe);
  req.attr32(RTA_OIF, ifindex);
  return rt;
}

Result<void> RtNetlink::addHostRoute(uint32_t ifindex, uint32_t dstBe, uint32_t srcBe) {
  Request req;
  buildRoute(req, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, ifindex, dstBe);
  req.attr32(RTA_PREFSRC, srcBe);
  return request(req.hdr(), "add route");
}

Result<void> RtNetlink::delHostRoute(uint32_t ifindex, uint32_t dstBe) {
  Request req;
  auto* rt = buildRoute(req, RTM_DELROUTE, 0, ifindex, dstBe);
  rt->rtm_scope = RT_SCOPE_NOWHERE;  // delete matches any scope
  return okIf(request(req.hdr(), "delete route"), {ESRCH, ENODEV});
}

Result<void> RtNetlink::addPermanentNeighbour(uint32_t ifindex, uint32_t addrBe,
                                              const uint8_t mac[6]) {
  Request req;
  auto* nd = req.begin<ndmsg>(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = static_cast<int>(ifindex);
  nd->ndm_state = NUD_PERMANENT;
  req.attr32(NDA_DST, addrBe);
  req.attr(NDA_LLADDR, mac, 6);
  return request(req.hdr(), "add neighbour");
}

Result<void> RtNetlink::delNeighbour(uint32_t ifindex, uint32_t addrBe) {
  Request req;
  auto* nd = req.begin<ndmsg>(RTM_DELNEIGH, 0);
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = static_cast<int>(ifindex);
  req.attr32(NDA_DST, addrBe);
  return okIf(request(req.hdr(), "delete neighbour"), {ENOENT, ENODEV});
}

Result<std::vector<NeighbourEntry>> RtNetlink::neighbours(uint32_t ifindex) {
  Request req;
  auto* nd = req.begin<ndmsg>(RTM_GETNEIGH, 0);
  nd->ndm_family = AF_INET;
  std::vector<NeighbourEntry> out;
  auto r = dump(req.hdr(), "dump neighbours", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWNEIGH) return;
    const auto* m = static_cast<const ndmsg*>(NLMSG_DATA(h));
    if (static_cast<uint32_t>(m->ndm_ifindex) != ifindex) return;
    NeighbourEntry e;
    e.state = m->ndm_state;
    forEachAttr<ndmsg>(h, [&](const rtattr* a) {
      if (a->rta_type == NDA_DST && RTA_PAYLOAD(a) == 4) std::memcpy(&e.addressBe, RTA_DATA(a), 4);
      if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) std::memcpy(e.lladdr, RTA_DATA(a), 6);
    });
    out.push_back(e);
  });
  if (!r.ok()) return r.error();
  return out;
}

Result<std::vector<uint32_t>> RtNetlink::hostRoutes(uint32_t ifindex) {
  Request req;
  auto* rt = req.begin<rtmsg>(RTM_GETROUTE, 0);
  rt->rtm_family = AF_INET;
  std::vector<uint32_t> out;
  auto r = dump(req.hdr(), "dump routes", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return;
    const auto* m = static_cast<const rtmsg*>(NLMSG_DATA(h));
    if (m->rtm_table != RT_TABLE_MAIN || m->rtm_dst_len != 32) return;
    uint32_t dst = 0, oif = 0;
    forEachAttr<rtmsg>(h, [&](const rtattr* a) {
      if (a->rta_type == RTA_DST) std::memcpy(&dst, RTA_DATA(a), 4);
      if (a->rta_type == RTA_OIF) std::memcpy(&oif, RTA_DATA(a), 4);
    });
    if (oif == ifindex) out.push_back(dst);
  });
  if (!r.ok()) return r.error();
  return out;
}

}  // namespace s2z::agent
