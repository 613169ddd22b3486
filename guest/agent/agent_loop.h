// The agent's single-threaded event loop after boot: one poll over a
// signalfd (SIGCHLD: reap; SIGIO: the channel's host connected, disconnected
// or sent data) and the channel port while a host is connected.
#pragma once

#include "common/unique_fd.h"
#include "guest/agent/agent_service.h"
#include "guest/agent/guest_channel.h"
#include "guest/agent/root_filesystem.h"
#include "guest/agent/workload.h"

namespace s2z::guest {

// Blocks the signals the loop reads (SIGCHLD, SIGIO) and returns a signalfd
// for them. Call before the channel is opened so no SIGIO is lost; the
// blocked mask is undone in the workload before exec.
Result<UniqueFd> blockLoopSignals();

// Runs until the workload has exited and the host acknowledged its exit, then
// ends the workload's leftovers, unmounts and powers off. Never returns.
[[noreturn]] void runAgentLoop(int signalFd, GuestChannel& channel, Workload& workload, RootFilesystem& root);

}  // namespace s2z::guest
