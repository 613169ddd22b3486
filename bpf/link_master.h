// Whether a network device is enslaved to a bridge (or another master), as
// rtnetlink reports it in the current network namespace. KernelScaleToZero
// uses it to choose the classifier: a tap sees only its VM's frames, a
// bridge port also sees frames flooded for the bridge's other ports.
#pragma once

#include <cstdint>

#include "common/result.h"

namespace s2z::bpf {

// True if `ifindex` has a master device (IFLA_MASTER). Fails: kNotFound for
// an unknown ifindex, kSystem otherwise.
Result<bool> hasMasterDevice(uint32_t ifindex);

}  // namespace s2z::bpf
