// SPDX-License-Identifier: GPL-2.0
/* Idle detection and wake trigger. Entry points only; see s2z_maps.bpf.h
 * for the maps and s2z_types.h for the shared structs. */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "s2z_maps.bpf.h"

#define TC_ACT_OK 0

char LICENSE[] SEC("license") = "GPL";

static __always_inline int is_health_packet(__u32 mark) {
  __u32 key = 0;
  struct s2z_tc_config *cfg = bpf_map_lookup_elem(&s2z_cfg, &key);
  if (!cfg || cfg->health_mask == 0) return 0;
  return (mark & cfg->health_mask) == cfg->health_mask;
}

/* Emits the wake record only if this packet wins SLEEPING -> WAKING, so one
 * sleep yields exactly one event however many packets race. The record is
 * reserved first: if the ring is full the state stays SLEEPING and the next
 * packet tries again, rather than WAKING with nobody told. */
static __always_inline void wake_if_sleeping(struct s2z_state_value *st, __u32 ifindex,
                                             __u64 now) {
  if (st->state != S2Z_STATE_SLEEPING) return;
  struct s2z_wake_event *ev = bpf_ringbuf_reserve(&s2z_wake_rb, sizeof(*ev), 0);
  if (!ev) return;
  if (__sync_val_compare_and_swap(&st->state, S2Z_STATE_SLEEPING, S2Z_STATE_WAKING) !=
      S2Z_STATE_SLEEPING) {
    bpf_ringbuf_discard(ev, 0);
    return;
  }
  ev->ifindex = ifindex;
  ev->pad = 0;
  ev->timestamp_ns = now;
  bpf_ringbuf_submit(ev, 0);
}

#define TC_ACT_SHOT 2
/* Consumed: to a local sender the same as sent. A local TCP client whose SYN
 * is SHOT sees a local drop (NET_XMIT_DROP) and retries every 500 ms, timing
 * out after its syn_retries (~6 s, measured); STOLEN keeps its normal backoff
 * (1, 3, 7, 15 s), as a remote client has anyway. */
#define TC_ACT_STOLEN 4
#define S2Z_ETH_P_IP 0x0800
#define S2Z_ETH_P_ARP 0x0806
#define S2Z_IPPROTO_TCP 6

/* BOOTING: a client's new connection (TCP SYN without ACK, IPv4) would meet
 * the cold-booted guest before its server listens and be refused; dropped
 * instead, its port noted, so the client's own retransmission arrives once
 * the agent's probe (S2Z_BOOT_PROBE_MARK) found the port served. Everything
 * else passes: the guest's own replies, the probe, health checks. */
static __always_inline int drop_while_booting(struct __sk_buff *skb, struct s2z_state_value *st) {
  if (st->state != S2Z_STATE_BOOTING || skb->mark == S2Z_BOOT_PROBE_MARK) return 0;
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(S2Z_ETH_P_IP)) return 0;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end || ip->protocol != S2Z_IPPROTO_TCP || ip->ihl < 5) return 0;
  /* A later fragment carries no TCP header. */
  if (ip->frag_off & bpf_htons(0x1fff)) return 0;
  struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
  if ((void *)(tcp + 1) > end || !tcp->syn || tcp->ack) return 0;
  if (st->waiting_port == 0) st->waiting_port = bpf_ntohs(tcp->dest);
  return 1;
}

/* Attach point: clsact EGRESS of each task's host-side tap, i.e. traffic
 * heading into the VM. Drops nothing but a client's new connection while a
 * cold-booted guest is not yet serving (BOOTING): while the VM sleeps the
 * frames must queue in the held tap. Unknown ifindex: passed, not counted. */
SEC("tc")
int s2z_tap_egress(struct __sk_buff *skb) {
  __u32 ifindex = skb->ifindex;
  struct s2z_state_value *st = bpf_map_lookup_elem(&s2z_state, &ifindex);
  if (!st) return TC_ACT_OK;
  struct s2z_counters_value *c = bpf_map_lookup_elem(&s2z_counters, &ifindex);
  if (!c) return TC_ACT_OK;

  if (is_health_packet(skb->mark)) {
    __sync_fetch_and_add(&c->health_packets, 1);
    return TC_ACT_OK;
  }
  if (drop_while_booting(skb, st)) return TC_ACT_STOLEN;
  __u64 now = bpf_ktime_get_ns();
  __sync_fetch_and_add(&c->packets, 1);
  __sync_fetch_and_add(&c->bytes, skb->len);
  c->last_activity_ns = now;
  wake_if_sleeping(st, ifindex, now);
  return TC_ACT_OK;
}

/* What a frame on a bridge port is to the instance behind it. */
#define S2Z_FRAME_OTHER 0     /* flooded there for another port's host */
#define S2Z_FRAME_IPV4 1      /* IPv4 to an address registered for it in s2z_addr */
#define S2Z_FRAME_ARP_BCAST 2 /* broadcast ARP request for such an address */
#define S2Z_FRAME_ARP_OTHER 3 /* other ARP for it: unicast probes, replies */

static __always_inline int classify_frame(struct __sk_buff *skb, __u32 ifindex) {
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return S2Z_FRAME_OTHER;
  __u32 target = 0;
  int kind;
  if (eth->h_proto == bpf_htons(S2Z_ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) return S2Z_FRAME_OTHER;
    target = ip->daddr;
    kind = S2Z_FRAME_IPV4;
  } else if (eth->h_proto == bpf_htons(S2Z_ETH_P_ARP)) {
    /* Ethernet/IPv4 ARP: 8-byte header, sender MAC+IP, target MAC, target IP. */
    __u8 *arp = (void *)(eth + 1);
    if ((void *)(arp + 28) > end) return S2Z_FRAME_OTHER;
    __builtin_memcpy(&target, arp + 24, sizeof(target));
    kind = eth->h_dest[0] == 0xff && eth->h_dest[1] == 0xff && eth->h_dest[2] == 0xff &&
                   eth->h_dest[3] == 0xff && eth->h_dest[4] == 0xff && eth->h_dest[5] == 0xff
               ? S2Z_FRAME_ARP_BCAST
               : S2Z_FRAME_ARP_OTHER;
  } else {
    return S2Z_FRAME_OTHER;
  }
  __u32 *owner = bpf_map_lookup_elem(&s2z_addr, &target);
  return owner && *owner == ifindex ? kind : S2Z_FRAME_OTHER;
}

/* Attach point: clsact EGRESS of the host end of an instance's alloc veth
 * when that end is a bridge port (Nomad's group network: the tap lives in
 * the alloc's netns, joined to eth0 by TC redirects, and skb->mark is
 * scrubbed when a frame crosses the veth into that netns, so this is the
 * last point where health traffic is still told apart). Unlike the tap,
 * a bridge port also carries frames flooded for other ports (broadcast ARP,
 * IPv6 multicast, unicast to an aged-out MAC): those are neither counted
 * nor waking, and while the instance sleeps they are dropped so that they
 * never fill the tap queue its first real frame must wait in (txqueuelen
 * frames; a full queue drops the waking SYN). */
SEC("tc")
int s2z_port_egress(struct __sk_buff *skb) {
  __u32 ifindex = skb->ifindex;
  struct s2z_state_value *st = bpf_map_lookup_elem(&s2z_state, &ifindex);
  if (!st) return TC_ACT_OK;
  struct s2z_counters_value *c = bpf_map_lookup_elem(&s2z_counters, &ifindex);
  if (!c) return TC_ACT_OK;

  int kind = classify_frame(skb, ifindex);
  if (kind == S2Z_FRAME_OTHER) return st->state == S2Z_STATE_RUNNING ? TC_ACT_OK : TC_ACT_SHOT;
  if (is_health_packet(skb->mark)) {
    __sync_fetch_and_add(&c->health_packets, 1);
    return TC_ACT_OK;
  }
  if (drop_while_booting(skb, st)) return TC_ACT_STOLEN;
  /* A unicast ARP probe is the neighbour layer re-checking an address it
   * knows, e.g. after health checks (whose own packets carry the mark, but
   * not the kernel's ARP): neither activity nor a reason to wake. A
   * broadcast request is a client resolving the VM before its first
   * packet (a sleeping VM must wake for it, else the SYN never leaves the
   * client), and so is activity like the packet it precedes. */
  if (kind == S2Z_FRAME_ARP_OTHER) return TC_ACT_OK;
  __u64 now = bpf_ktime_get_ns();
  __sync_fetch_and_add(&c->packets, 1);
  __sync_fetch_and_add(&c->bytes, skb->len);
  c->last_activity_ns = now;
  wake_if_sleeping(st, ifindex, now);
  return TC_ACT_OK;
}
