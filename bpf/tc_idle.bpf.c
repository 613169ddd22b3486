// SPDX-License-Identifier: GPL-2.0
/* Idle detection and wake trigger. Entry points only; see s2z_maps.bpf.h
 * for the maps and s2z_types.h for the shared structs. */
#include "vmlinux.h"

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

/* Attach point: clsact EGRESS of each task's host-side tap, i.e. traffic
 * heading into the VM. Never drops: while the VM sleeps the frames must
 * queue in the held tap. Unknown ifindex: passed, not counted. */
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
  __u64 now = bpf_ktime_get_ns();
  __sync_fetch_and_add(&c->packets, 1);
  __sync_fetch_and_add(&c->bytes, skb->len);
  c->last_activity_ns = now;
  wake_if_sleeping(st, ifindex, now);
  return TC_ACT_OK;
}
