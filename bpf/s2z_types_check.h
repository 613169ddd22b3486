// Compile-time checks that the C++ view of s2z_types.h is the kernel's:
// sizes, offsets and state numbers (instead of a "keep in sync" comment).
#pragma once

#include <cstddef>

#include "bpf/s2z_types.h"
#include "bpf/scale_to_zero_kernel.h"

namespace s2z::bpf {

static_assert(sizeof(s2z_state_value) == 8);
static_assert(offsetof(s2z_state_value, state) == 0);

static_assert(sizeof(s2z_counters_value) == 32);
static_assert(offsetof(s2z_counters_value, packets) == 0);
static_assert(offsetof(s2z_counters_value, bytes) == 8);
static_assert(offsetof(s2z_counters_value, health_packets) == 16);
static_assert(offsetof(s2z_counters_value, last_activity_ns) == 24);

static_assert(sizeof(s2z_tc_config) == 8);
static_assert(offsetof(s2z_tc_config, health_mask) == 0);

static_assert(sizeof(s2z_responder) == 8);
static_assert(offsetof(s2z_responder, addr_be) == 0);
static_assert(offsetof(s2z_responder, port_be) == 4);

static_assert(sizeof(s2z_hostport_key) == 8);
static_assert(offsetof(s2z_hostport_key, addr_be) == 0);
static_assert(offsetof(s2z_hostport_key, port_be) == 4);

static_assert(sizeof(s2z_wake_event) == 16);
static_assert(offsetof(s2z_wake_event, ifindex) == 0);
static_assert(offsetof(s2z_wake_event, timestamp_ns) == 8);

static_assert(static_cast<uint32_t>(InstanceState::kRunning) == S2Z_STATE_RUNNING);
static_assert(static_cast<uint32_t>(InstanceState::kSleeping) == S2Z_STATE_SLEEPING);
static_assert(static_cast<uint32_t>(InstanceState::kWaking) == S2Z_STATE_WAKING);

}  // namespace s2z::bpf
