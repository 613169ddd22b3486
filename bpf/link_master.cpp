#include "bpf/link_master.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/unique_fd.h"

namespace s2z::bpf {

Result<bool> hasMasterDevice(uint32_t ifindex) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return systemError("rtnetlink socket");
  struct {
    nlmsghdr hdr;
    ifinfomsg ifi;
  } req{};
  req.hdr.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.hdr.nlmsg_type = RTM_GETLINK;
  req.hdr.nlmsg_flags = NLM_F_REQUEST;
  req.hdr.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = static_cast<int>(ifindex);
  if (::send(fd.get(), &req, req.hdr.nlmsg_len, 0) < 0) return systemError("RTM_GETLINK send");
  std::vector<char> buf(32768);
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return systemError("RTM_GETLINK recv");
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_ERROR) {
        int err = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        if (err == ENODEV)
          return Error{ErrorCode::kNotFound, err, "ifindex " + std::to_string(ifindex) + " not found"};
        return systemError("RTM_GETLINK ifindex " + std::to_string(ifindex), err);
      }
      if (h->nlmsg_type != RTM_NEWLINK) continue;
      auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(h));
      int attrLen = static_cast<int>(h->nlmsg_len) - NLMSG_LENGTH(sizeof(ifinfomsg));
      for (auto* rta = IFLA_RTA(ifi); RTA_OK(rta, attrLen); rta = RTA_NEXT(rta, attrLen)) {
        if (rta->rta_type == IFLA_MASTER) return true;
      }
      return false;
    }
  }
}

}  // namespace s2z::bpf
