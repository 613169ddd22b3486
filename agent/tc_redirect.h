// Kata's tcfilter model for joining a VM's tap to the alloc's eth0: an
// ingress qdisc on each device with a u32 "match all" filter whose mirred
// action redirects every frame to the other device's egress (action
// STOLEN). Frames the guest writes into the tap leave through eth0 as if
// eth0 had sent them; frames arriving on eth0 go straight into the tap,
// past the netns's own IP stack, so eth0 keeps its CNI-assigned address
// (Nomad's CNI CHECK after a client restart verifies it) without ever
// answering for it. Acts on the calling thread's network namespace.
#pragma once

#include <cstdint>

#include "common/result.h"

namespace s2z::agent {

// Adds an ingress qdisc (ffff:) on `from` and the redirect filter to `to`.
// Pre: neither has an ingress qdisc. Fails: kSystem with the kernel's errno
// (EEXIST when one is there already), kNotFound if a device is gone.
Result<void> addIngressRedirect(uint32_t from, uint32_t to);

// Removes the ingress qdisc of `ifindex` with its filters. Idempotent: ok
// when none (or the device) exists.
Result<void> removeIngress(uint32_t ifindex);

}  // namespace s2z::agent
