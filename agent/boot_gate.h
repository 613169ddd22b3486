// The boot gate: after a cold boot that replaced a lost guest (a wake whose
// resume or restore failed), the clients that were waiting for the old guest
// must not meet the new one before its server listens, or their connections
// are refused (RST) and the request that woke the task is lost.
//
// While the gate holds, the instance's BPF state is kBooting: the TC program
// drops every new TCP connection (SYN without ACK) to the guest and notes the
// port of the first (tc_idle.bpf.c, drop_while_booting); health checks are
// answered by the responder as while it slept. The gate waits for such a
// port, then connects to it with a socket marked S2Z_BOOT_PROBE_MARK (which
// the program lets through) until the guest accepts. The caller then sets
// kRunning and the client's own SYN retransmission (1, 3, 7, 15 s after its
// first, Linux defaults) gets through to a listening server.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "bpf/scale_to_zero_kernel.h"

namespace s2z::agent {

struct BootGateLimits {
  // How long to wait for a client's connection once the guest has booted;
  // none by then: nobody is waiting.
  std::chrono::milliseconds clientWait{10000};
  // How long the probe may wait for the guest to serve that port.
  std::chrono::milliseconds serveWait{30000};
};

struct BootGateOutcome {
  uint16_t port = 0;     // the port a client waited for; 0: none came
  bool serving = false;  // the guest accepted a connection on it
  bool gaveWay = false;  // `giveWay` was set: opened early
  std::chrono::milliseconds waited{0};
};

// Holds new connections (the caller set kBooting before the boot) until the
// guest serves the port a client waits for, or the limits run out, or
// `giveWay` turns true (a StopTask waits for the instance: a stopped task has
// no client to wait for, and it must not wait up to 40 s for the gate).
// Never fails: a gate that cannot tell just opens (the caller sets kRunning).
BootGateOutcome waitUntilServing(const bpf::ScaleToZeroKernel& kernel, uint32_t ifindex,
                                 const std::string& guestAddress, const BootGateLimits& limits,
                                 const std::atomic<bool>& giveWay);

}  // namespace s2z::agent
