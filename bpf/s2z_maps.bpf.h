/* Maps shared by every s2z-kata BPF program. Each .bpf.c includes this
 * header, and the loaders pin every map by name under
 * <pin root>/S2Z_PIN_LAYOUT/, so all programs (and restarted plugins) share
 * one copy. BPF-side only (needs vmlinux.h and bpf_helpers.h first). */
#ifndef S2Z_BPF_MAPS_H
#define S2Z_BPF_MAPS_H

#include "s2z_types.h"

/* ifindex -> instance state. No prealloc: an element replaced from user
 * space is freed after an RCU grace period, never reused under a running
 * program's CAS. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, S2Z_MAX_INSTANCES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, struct s2z_state_value);
} s2z_state SEC(".maps");

/* ifindex -> packet/byte/health counters, read by the idle monitor. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, S2Z_MAX_INSTANCES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, struct s2z_counters_value);
} s2z_counters SEC(".maps");

/* VM IPv4 address (network order) -> ifindex, for the connect hooks. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, S2Z_MAX_INSTANCES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, __u32);
} s2z_addr SEC(".maps");

/* Host address:port -> ifindex (group networks: Nomad's host_ip:value,
 * DNATed by portmap to the instance), for the connect hooks. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, S2Z_MAX_INSTANCES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct s2z_hostport_key);
  __type(value, __u32);
} s2z_hostport SEC(".maps");

/* Health mask of the TC program (run-time, set through setHealthMark). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct s2z_tc_config);
} s2z_cfg SEC(".maps");

/* Always-200 responder the connect hooks redirect to (set by setResponder). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct s2z_responder);
} s2z_resp SEC(".maps");

/* Wake events (struct s2z_wake_event) for the agent's epoll loop. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, S2Z_WAKE_RB_BYTES);
} s2z_wake_rb SEC(".maps");

#endif /* S2Z_BPF_MAPS_H */
