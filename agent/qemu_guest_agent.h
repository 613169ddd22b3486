// The host end of qemu-guest-agent (QEMU's qga) for guests without our own
// agent: after a wake it sets the guest's wall clock with guest-set-time, as
// `virsh domtime --now` does. The VMM gives such guests a virtio-serial port
// named org.qemu.guest_agent.0 whose host end is a unix socket; a guest that
// runs qemu-ga there (`qemu-ga -m virtio-serial`) answers, others never do.
//
// Wire facts (QEMU docs/interop/qemu-ga-ref, qga/main.c): JSON commands and
// one JSON reply per line; the channel may hold a reply to an earlier
// connection's command, so every connection starts with
// guest-sync-delimited, whose reply is preceded by a 0xFF byte (and a 0xFF
// sent first makes qga drop any partial command). guest-set-time sets
// CLOCK_REALTIME to `time` (ns since the epoch) and then runs
// `/sbin/hwclock -w`; a guest without hwclock reports an error after the
// clock was set, so the result is judged by guest-get-time.
#pragma once

#include <chrono>
#include <filesystem>

#include "agent/guest_clock.h"
#include "common/result.h"

namespace s2z::agent {

// Syncs with qemu-ga (giving up after `timeout`: kTimeout, no qemu-ga
// there), sets the guest's clock from the host's and measures the result.
Result<ClockCorrection> correctClockWithQemuGuestAgent(const std::filesystem::path& socket,
                                                       std::chrono::milliseconds timeout);

}  // namespace s2z::agent
