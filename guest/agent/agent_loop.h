// The agent's single-threaded event loop after boot: one poll over a
// signalfd (SIGCHLD: reap; SIGIO: the channel's host connected, disconnected
// or sent data), the channel port while a host is connected (over vsock also
// its listener), exec'd commands' pipes and the relayed workload output.
#pragma once

#include "common/unique_fd.h"
#include "guest/agent/agent_service.h"
#include "guest/agent/guest_channel.h"
#include "guest/agent/output_relay.h"
#include "guest/agent/root_filesystem.h"
#include "guest/agent/workload.h"

namespace s2z::guest {

// Blocks the signals the loop reads (SIGCHLD, SIGIO) and returns a signalfd
// for them. Call before the channel is opened so no SIGIO is lost; the
// blocked mask is undone in the workload before exec.
Result<UniqueFd> blockLoopSignals();

// Runs until the workload has exited and the host acknowledged its exit, then
// ends the workload's leftovers, unmounts and powers off. Never returns.
// `relay`: the workload's output when it goes over the channel, else null.
[[noreturn]] void runAgentLoop(int signalFd, GuestChannel& channel, Workload& workload, RootFilesystem& root,
                               OutputRelay* relay);

}  // namespace s2z::guest
