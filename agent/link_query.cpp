#include "agent/link_query.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstdio>

#include "agent/netlink_request.h"

namespace s2z::agent {

std::string formatMac(const unsigned char* mac) {
  char out[18];
  std::snprintf(out, sizeof out, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return out;
}

Result<LinkFacts> queryLink(uint32_t ifindex) {
  auto nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = static_cast<int>(ifindex);
  NetlinkMessage msg(RTM_GETLINK, 0, &ifi, sizeof ifi);
  LinkFacts facts;
  bool seen = false;
  auto done = nl->dump(msg, "get link " + std::to_string(ifindex), [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    seen = true;
    const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    facts.ifindex = static_cast<uint32_t>(info->ifi_index);
    facts.noArp = (info->ifi_flags & IFF_NOARP) != 0;
    forEachAttribute(h, sizeof(ifinfomsg), [&](const rtattr* a) {
      switch (a->rta_type) {
        case IFLA_ADDRESS:
          if (RTA_PAYLOAD(a) == 6) facts.mac = formatMac(static_cast<const unsigned char*>(RTA_DATA(a)));
          break;
        case IFLA_MTU: facts.mtu = *static_cast<const uint32_t*>(RTA_DATA(a)); break;
        case IFLA_TXQLEN: facts.txQueueLen = *static_cast<const uint32_t*>(RTA_DATA(a)); break;
        case IFLA_LINK: facts.peerIfindex = *static_cast<const uint32_t*>(RTA_DATA(a)); break;
        case IFLA_LINK_NETNSID: facts.peerInOtherNamespace = true; break;
        case IFLA_MASTER: facts.hasMaster = true; break;
        case IFLA_LINKINFO: {
          // Nested: IFLA_INFO_KIND names the driver.
          int len = static_cast<int>(RTA_PAYLOAD(a));
          for (auto* in = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(in, len); in = RTA_NEXT(in, len)) {
            if (in->rta_type == IFLA_INFO_KIND) facts.kind = static_cast<const char*>(RTA_DATA(in));
          }
          break;
        }
      }
    });
  });
  if (!done.ok()) return done.error();
  if (!seen) return makeError(ErrorCode::kNotFound, "link " + std::to_string(ifindex) + " not found");
  return facts;
}

Result<LinkFacts> queryLink(const std::string& name) {
  unsigned idx = ::if_nametoindex(name.c_str());
  if (idx == 0) return Error{ErrorCode::kNotFound, errno, "interface " + name + " not found"};
  auto facts = queryLink(idx);
  if (!facts.ok()) return facts.error().wrap(name);
  return facts;
}

Result<Ipv4Facts> queryIpv4(uint32_t ifindex) {
  auto nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  Ipv4Facts facts;
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  NetlinkMessage addrs(RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof ifa);
  S2Z_TRY(nl->dump(addrs, "list addresses", [&](const nlmsghdr* h) {
    const auto* m = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
    if (h->nlmsg_type != RTM_NEWADDR || m->ifa_index != ifindex || !facts.address.empty()) return;
    forEachAttribute(h, sizeof(ifaddrmsg), [&](const rtattr* a) {
      if (a->rta_type == IFA_LOCAL && RTA_PAYLOAD(a) == 4) {
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, RTA_DATA(a), text, sizeof text);
        facts.address = text;
        facts.prefixLength = m->ifa_prefixlen;
      }
    });
  }), "query IPv4 of " + std::to_string(ifindex));
  if (facts.address.empty())
    return makeError(ErrorCode::kNotFound, "link " + std::to_string(ifindex) + " has no IPv4 address");
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  NetlinkMessage routes(RTM_GETROUTE, NLM_F_DUMP, &rt, sizeof rt);
  std::vector<Ipv4Route> viaGateway;
  S2Z_TRY(nl->dump(routes, "list routes", [&](const nlmsghdr* h) {
    const auto* m = static_cast<const rtmsg*>(NLMSG_DATA(h));
    if (h->nlmsg_type != RTM_NEWROUTE || m->rtm_table != RT_TABLE_MAIN || m->rtm_type != RTN_UNICAST) return;
    Ipv4Route route{"0.0.0.0", m->rtm_dst_len, ""};
    uint32_t oif = 0;
    forEachAttribute(h, sizeof(rtmsg), [&](const rtattr* a) {
      if (a->rta_type == RTA_OIF) oif = *static_cast<const uint32_t*>(RTA_DATA(a));
      if ((a->rta_type == RTA_GATEWAY || a->rta_type == RTA_DST) && RTA_PAYLOAD(a) == 4) {
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, RTA_DATA(a), text, sizeof text);
        (a->rta_type == RTA_GATEWAY ? route.gateway : route.destination) = text;
      }
    });
    if (oif != ifindex) return;
    if (m->rtm_dst_len == 0) {
      if (facts.gateway.empty()) facts.gateway = route.gateway;
      return;
    }
    // The guest's kernel makes the connected route from address and netmask.
    if (m->rtm_protocol == RTPROT_KERNEL) return;
    (route.gateway.empty() ? facts.routes : viaGateway).push_back(std::move(route));
  }), "query IPv4 of " + std::to_string(ifindex));
  facts.routes.insert(facts.routes.end(), viaGateway.begin(), viaGateway.end());
  return facts;
}

namespace {
Result<void> setLinkU32(uint32_t ifindex, uint16_t attr, uint32_t value, const std::string& what) {
  auto nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = static_cast<int>(ifindex);
  NetlinkMessage msg(RTM_NEWLINK, 0, &ifi, sizeof ifi);
  msg.attr32(attr, value);
  return nl->request(msg, "set " + what + " " + std::to_string(value) + " on ifindex " + std::to_string(ifindex));
}
}  // namespace

Result<void> setLinkMtu(uint32_t ifindex, uint32_t mtu) { return setLinkU32(ifindex, IFLA_MTU, mtu, "mtu"); }

Result<void> setLinkTxQueueLen(uint32_t ifindex, uint32_t length) {
  return setLinkU32(ifindex, IFLA_TXQLEN, length, "txqueuelen");
}

}  // namespace s2z::agent
