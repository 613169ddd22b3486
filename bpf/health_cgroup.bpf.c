// SPDX-License-Identifier: GPL-2.0
/* Health-check plumbing on the health checker's cgroup v2. Entry points
 * only; maps in s2z_maps.bpf.h, structs in s2z_types.h. */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "s2z_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Mark OR-ed into every socket of the cgroup; set by the loader before load. */
const volatile __u32 s2z_sock_mark = 0;

/* Attach point: cgroup/sock_create on the health checker's cgroup. Setting
 * sk->mark at creation puts the mark on every packet of the socket, the
 * final ACK sent from TIME_WAIT included (an owner match misses that one). */
SEC("cgroup/sock_create")
int s2z_hc_sock_create(struct bpf_sock *sk) {
  if (s2z_sock_mark) sk->mark |= s2z_sock_mark;
  return 1;
}

/* Returns the responder if addr_be is an instance that is asleep (SLEEPING
 * or WAKING), else NULL. */
static __always_inline struct s2z_responder *responder_for(__u32 addr_be) {
  __u32 *ifindex = bpf_map_lookup_elem(&s2z_addr, &addr_be);
  if (!ifindex) return 0;
  struct s2z_state_value *st = bpf_map_lookup_elem(&s2z_state, ifindex);
  if (!st) return 0;
  __u32 state = st->state;
  if (state != S2Z_STATE_SLEEPING && state != S2Z_STATE_WAKING && state != S2Z_STATE_BOOTING) return 0;
  __u32 key = 0;
  struct s2z_responder *r = bpf_map_lookup_elem(&s2z_resp, &key);
  if (!r || r->addr_be == 0) return 0;
  return r;
}

/* The same for a host address and port that portmap DNATs to an instance
 * of a group network (a check with address_mode = "host"): the connect
 * hook runs before the DNAT, so it sees host_ip:port, not the VM. */
static __always_inline struct s2z_responder *responder_for_hostport(__u32 addr_be, __u32 port_be) {
  struct s2z_hostport_key key = {.addr_be = addr_be, .port_be = (__u16)port_be, .pad = 0};
  __u32 *ifindex = bpf_map_lookup_elem(&s2z_hostport, &key);
  if (!ifindex) return 0;
  struct s2z_state_value *st = bpf_map_lookup_elem(&s2z_state, ifindex);
  if (!st) return 0;
  __u32 state = st->state;
  if (state != S2Z_STATE_SLEEPING && state != S2Z_STATE_WAKING && state != S2Z_STATE_BOOTING) return 0;
  __u32 zero = 0;
  struct s2z_responder *r = bpf_map_lookup_elem(&s2z_resp, &zero);
  if (!r || r->addr_be == 0) return 0;
  return r;
}

/* Attach point: cgroup/connect4 on the health checker's cgroup. A TCP
 * connect to a sleeping instance (its address, or a host address:port
 * mapped to it) goes to the always-200 responder instead, so the check
 * passes and no packet reaches the tap. Always allows. */
SEC("cgroup/connect4")
int s2z_hc_connect4(struct bpf_sock_addr *ctx) {
  if (ctx->type != SOCK_STREAM) return 1;
  struct s2z_responder *r = responder_for(ctx->user_ip4);
  if (!r) r = responder_for_hostport(ctx->user_ip4, ctx->user_port);
  if (!r) return 1;
  ctx->user_ip4 = r->addr_be;
  ctx->user_port = r->port_be;
  return 1;
}

/* Attach point: cgroup/connect6. The same for IPv4-mapped destinations
 * (::ffff:a.b.c.d) of dual-stack sockets; native IPv6 is left alone. */
SEC("cgroup/connect6")
int s2z_hc_connect6(struct bpf_sock_addr *ctx) {
  if (ctx->type != SOCK_STREAM) return 1;
  if (ctx->user_ip6[0] != 0 || ctx->user_ip6[1] != 0 ||
      ctx->user_ip6[2] != bpf_htonl(0x0000ffff))
    return 1;
  struct s2z_responder *r = responder_for(ctx->user_ip6[3]);
  if (!r) return 1;
  ctx->user_ip6[3] = r->addr_be;
  ctx->user_port = r->port_be;
  return 1;
}
