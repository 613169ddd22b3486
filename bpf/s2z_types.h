/* The kernel/user contract of s2z-kata: map keys, values, ring-buffer
 * records and numbered constants. The one header that both clang -target bpf
 * (through vmlinux.h) and the C++ loader include; the C++ side checks sizes
 * and offsets in s2z_types_check.h. Plain C on purpose.
 *
 * Changing a struct layout means bumping S2Z_PIN_LAYOUT (the pin directory
 * version), so a new plugin never reuses maps of an older layout by mistake.
 */
#ifndef S2Z_BPF_TYPES_H
#define S2Z_BPF_TYPES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Instance states (value of s2z_state). Match s2z::bpf::InstanceState;
 * never renumbered: they live in pinned maps across plugin upgrades. */
#define S2Z_STATE_RUNNING 1  /* packets pass and are counted */
#define S2Z_STATE_SLEEPING 2 /* a counted packet flips it to WAKING + one event */
#define S2Z_STATE_WAKING 3   /* set by the TC program; nothing more is emitted */
#define S2Z_STATE_BOOTING 4  /* a cold boot replaces a lost guest: new TCP connections
                              * (SYN without ACK) are dropped and their port noted,
                              * until the guest serves (agent/boot_gate.h) */

/* skb->mark of the agent's readiness probe: its SYNs pass a BOOTING instance.
 * Clear of the marks other host software uses (portmap 0x2000, kube-proxy
 * 0x4000/0x8000); as any mark, it counts as health traffic only if it
 * carries every bit of health_check_mark. */
#define S2Z_BOOT_PROBE_MARK 0x53320000u

/* Pin directory under the caller's pin root; bumped on any layout change. */
#define S2Z_PIN_LAYOUT "v1"

/* Capacity of the per-instance maps (one entry per tap). */
#define S2Z_MAX_INSTANCES 4096
/* Ring buffer bytes; a record takes 24 (8 header + 16). Page multiple. */
#define S2Z_WAKE_RB_BYTES (64 * 1024)

/* s2z_state value, key: __u32 ifindex of the host-side tap. */
struct s2z_state_value {
  __u32 state;        /* S2Z_STATE_*; the TC program compare-and-swaps it */
  __u32 waiting_port; /* BOOTING: TCP port of a dropped SYN (host order), 0 none */
};

/* s2z_counters value, key: __u32 ifindex. Updated with atomic adds. */
struct s2z_counters_value {
  __u64 packets;        /* counted (non-health) packets toward the VM */
  __u64 bytes;          /* their skb->len */
  __u64 health_packets; /* packets carrying the health mark */
  __u64 last_activity_ns; /* bpf_ktime_get_ns() of the last counted packet */
};

/* s2z_cfg value (single entry, key 0): run-time settings of the TC program. */
struct s2z_tc_config {
  __u32 health_mask; /* skb->mark bits of health traffic; 0 = filtering off */
  __u32 pad;
};

/* s2z_resp value (single entry, key 0): where connect hooks send health
 * checks aimed at a sleeping instance. addr_be 0 = no redirect. */
struct s2z_responder {
  __u32 addr_be; /* IPv4, network byte order */
  __u16 port_be; /* network byte order */
  __u16 pad;
};

/* s2z_hostport key: a host address and port that portmap DNATs to an
 * instance in a group network (Nomad's host_ip:value). Value: __u32 ifindex
 * of the instance (the host end of its alloc veth). */
struct s2z_hostport_key {
  __u32 addr_be; /* IPv4, network byte order */
  __u16 port_be; /* network byte order */
  __u16 pad;
};

/* s2z_wake_rb record: one per sleep, written by the packet that won the CAS. */
struct s2z_wake_event {
  __u32 ifindex;
  __u32 pad;
  __u64 timestamp_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
};

#endif /* S2Z_BPF_TYPES_H */
