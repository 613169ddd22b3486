#include "agent/tc_redirect.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "agent/netlink_request.h"

namespace s2z::agent {
namespace {

constexpr uint32_t kIngressHandle = TC_H_MAKE(TC_H_INGRESS, 0);  // ffff:
// Kata's filter has tc's default priority; any fixed one will do, as the
// qdisc is ours alone.
constexpr uint32_t kFilterPriority = 49152;

tcmsg tcFor(uint32_t ifindex, uint32_t handle, uint32_t parent) {
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = static_cast<int>(ifindex);
  t.tcm_handle = handle;
  t.tcm_parent = parent;
  return t;
}

// u32 with one key of mask 0 ("match u8 0 0": every frame), then
// mirred egress redirect to `to`, STOLEN (the frame is not seen further on
// `from`).
void appendRedirectFilter(NetlinkMessage& msg, uint32_t to) {
  msg.attrString(TCA_KIND, "u32");
  size_t options = msg.beginNested(TCA_OPTIONS);
  // tc_u32_sel ends in a flexible array of keys: the one key follows it.
  tc_u32_sel sel{};
  sel.flags = TC_U32_TERMINAL;
  sel.nkeys = 1;
  tc_u32_key key{};  // mask 0, value 0 at offset 0
  char selector[sizeof sel + sizeof key];
  std::memcpy(selector, &sel, sizeof sel);
  std::memcpy(selector + sizeof sel, &key, sizeof key);
  msg.attr(TCA_U32_SEL, selector, sizeof selector);
  size_t actions = msg.beginNested(TCA_U32_ACT);
  size_t first = msg.beginNested(1);  // action order 1
  msg.attrString(TCA_ACT_KIND, "mirred");
  size_t params = msg.beginNested(TCA_ACT_OPTIONS);
  tc_mirred mirred{};
  mirred.action = TC_ACT_STOLEN;
  mirred.eaction = TCA_EGRESS_REDIR;
  mirred.ifindex = to;
  msg.attr(TCA_MIRRED_PARMS, &mirred, sizeof mirred);
  msg.endNested(params);
  msg.endNested(first);
  msg.endNested(actions);
  msg.endNested(options);
}

}  // namespace

Result<void> addIngressRedirect(uint32_t from, uint32_t to) {
  auto nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  const std::string where = "ifindex " + std::to_string(from);
  tcmsg qdisc = tcFor(from, kIngressHandle, TC_H_INGRESS);
  NetlinkMessage addQdisc(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, &qdisc, sizeof qdisc);
  addQdisc.attrString(TCA_KIND, "ingress");
  S2Z_TRY(nl->request(addQdisc, "add ingress qdisc"), where);

  tcmsg filter = tcFor(from, 0, kIngressHandle);
  filter.tcm_info = TC_H_MAKE(kFilterPriority << 16, htons(ETH_P_ALL));
  NetlinkMessage addFilter(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, &filter, sizeof filter);
  appendRedirectFilter(addFilter, to);
  S2Z_TRY(nl->request(addFilter, "add redirect filter to ifindex " + std::to_string(to)), where);
  return okResult();
}

Result<void> removeIngress(uint32_t ifindex) {
  auto nl = NetlinkSocket::open();
  if (!nl.ok()) return nl.error();
  tcmsg qdisc = tcFor(ifindex, kIngressHandle, TC_H_INGRESS);
  NetlinkMessage del(RTM_DELQDISC, 0, &qdisc, sizeof qdisc);
  auto done = nl->request(del, "delete ingress qdisc of ifindex " + std::to_string(ifindex));
  // No qdisc (ENOENT, or EINVAL on older kernels) or no device: nothing to do.
  if (!done.ok() && (done.error().errnum == ENOENT || done.error().errnum == EINVAL ||
                     done.error().errnum == ENODEV))
    return okResult();
  return done;
}

}  // namespace s2z::agent
