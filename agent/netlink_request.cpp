#include "agent/netlink_request.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace s2z::agent {
namespace {

constexpr size_t kReceiveSize = 65536;

// The kernel's NLMSGERR_ATTR_MSG text of an extended ack, if any.
std::string extAckText(const nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  size_t skip = sizeof(nlmsgerr);
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) skip += err->msg.nlmsg_len - sizeof(nlmsghdr);
  const char* start = reinterpret_cast<const char*>(err) + NLMSG_ALIGN(skip);
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(start - reinterpret_cast<const char*>(h));
  for (auto* rta = reinterpret_cast<const rtattr*>(start); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
    if (rta->rta_type == NLMSGERR_ATTR_MSG) return static_cast<const char*>(RTA_DATA(rta));
  }
  return {};
}

}  // namespace

NetlinkMessage::NetlinkMessage(uint16_t type, uint16_t flags, const void* body, size_t bodyLen)
    : buf_(NLMSG_SPACE(bodyLen), 0) {
  nlmsghdr* h = header();
  h->nlmsg_len = NLMSG_LENGTH(bodyLen);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | flags;
  std::memcpy(NLMSG_DATA(h), body, bodyLen);
}

void NetlinkMessage::attr(uint16_t type, const void* data, size_t len) {
  size_t at = NLMSG_ALIGN(header()->nlmsg_len);
  buf_.resize(at + RTA_SPACE(len), 0);
  auto* rta = reinterpret_cast<rtattr*>(buf_.data() + at);
  rta->rta_type = type;
  rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
  if (len > 0) std::memcpy(RTA_DATA(rta), data, len);
  header()->nlmsg_len = static_cast<uint32_t>(at + RTA_ALIGN(rta->rta_len));
}

size_t NetlinkMessage::beginNested(uint16_t type) {
  size_t at = NLMSG_ALIGN(header()->nlmsg_len);
  attr(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0);
  return at;
}

void NetlinkMessage::endNested(size_t offset) {
  auto* rta = reinterpret_cast<rtattr*>(buf_.data() + offset);
  rta->rta_len = static_cast<unsigned short>(header()->nlmsg_len - offset);
}

Result<NetlinkSocket> NetlinkSocket::open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return systemError("rtnetlink: socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) < 0)
    return systemError("rtnetlink: bind");
  return NetlinkSocket(std::move(fd));
}

Result<void> NetlinkSocket::request(NetlinkMessage& msg, const std::string& what) {
  msg.header()->nlmsg_flags |= NLM_F_ACK;
  return dump(msg, what, [](const nlmsghdr*) {});
}

Result<void> NetlinkSocket::dump(NetlinkMessage& msg, const std::string& what,
                                 const std::function<void(const nlmsghdr*)>& onMessage) {
  nlmsghdr* h = msg.header();
  h->nlmsg_seq = ++seq_;
  const bool isDump = (h->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), h, h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
    return systemError("rtnetlink " + what + ": send");
  std::vector<char> storage(kReceiveSize);
  for (;;) {
    ssize_t n = ::recv(fd_.get(), storage.data(), storage.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return systemError("rtnetlink " + what + ": recv");
    }
    int len = static_cast<int>(n);
    for (auto* r = reinterpret_cast<nlmsghdr*>(storage.data()); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != seq_) continue;  // a stale answer
      if (r->nlmsg_type == NLMSG_DONE) return okResult();
      if (r->nlmsg_type == NLMSG_ERROR) {
        int err = -static_cast<const nlmsgerr*>(NLMSG_DATA(r))->error;
        if (err == 0) return okResult();
        std::string text = extAckText(r);
        ErrorCode code = err == ENODEV || err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kSystem;
        return Error{code, err, "rtnetlink " + what + ": " + std::strerror(err) +
                                    (text.empty() ? "" : " (" + text + ")")};
      }
      onMessage(r);
      if (!isDump && !(r->nlmsg_flags & NLM_F_MULTI) && !(h->nlmsg_flags & NLM_F_ACK)) return okResult();
    }
  }
}

void forEachAttribute(const nlmsghdr* h, size_t bodyLen, const std::function<void(const rtattr*)>& f) {
  const char* start = static_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(bodyLen);
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(bodyLen));
  for (auto* rta = reinterpret_cast<const rtattr*>(start); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) f(rta);
}

}  // namespace s2z::agent
