// One record of the wake ring buffer (s2z_wake_rb) as the TC classifier
// submits it: struct s2z_wake_event (s2z_types.h), 16 bytes in host order.
// Kept apart from the libbpf consumer so it can be fuzzed on its own.
#pragma once

#include <cstddef>
#include <cstring>
#include <optional>

#include "bpf/s2z_types.h"
#include "bpf/scale_to_zero_kernel.h"

namespace s2z::bpf {

// A record shorter than s2z_wake_event is not ours (skipped); longer ones
// are read for their first fields. Interface index 0 names no device (the
// program never writes it), so such a record wakes nothing.
inline std::optional<WakeEvent> decodeWakeRecord(const void* data, size_t size) {
  if (size < sizeof(s2z_wake_event)) return std::nullopt;
  s2z_wake_event ev{};
  std::memcpy(&ev, data, sizeof(ev));
  if (ev.ifindex == 0) return std::nullopt;
  return WakeEvent{ev.ifindex, ev.timestamp_ns};
}

}  // namespace s2z::bpf
