#include "guest/agent/agent_loop.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "guest/agent/console_log.h"
#include "guest/agent/file_io.h"
#include "guest/agent/power_off.h"
#include "guest/agent/workload_cgroup.h"

namespace s2z::guest {

namespace {

// The poll timeout: a safety net should a SIGIO ever go missing.
constexpr int kPollTimeoutMs = 1000;

void drainSignals(int signalFd) {
  signalfd_siginfo info[8];
  while (::read(signalFd, info, sizeof info) > 0) {
  }
}

// Ends whatever the workload left behind and waits (up to 1 s) for the
// cgroup to empty, reaping as processes die, so the unmounts find no users.
void endLeftovers(Workload& workload) {
  killWorkloadCgroup();
  const std::string procs = std::string(kWorkloadCgroup) + "/cgroup.procs";
  for (int i = 0; i < 100; ++i) {
    workload.reapChildren();
    auto left = readFile(procs);
    if (!left.ok() || left->empty()) return;
    timespec pause{0, 10 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
  }
  logLine("workload cgroup still populated after cgroup.kill; unmounting anyway");
}

[[noreturn]] void shutDown(Workload& workload, RootFilesystem& root) {
  endLeftovers(workload);
  ::sync();
  root.unmountAll();
  powerOff("workload exit acknowledged by the host");
}

}  // namespace

Result<UniqueFd> blockLoopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGIO);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return systemError("block signals");
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd) return systemError("signalfd");
  return fd;
}

void runAgentLoop(int signalFd, GuestChannel& channel, Workload& workload, RootFilesystem& root) {
  AgentService service(channel, workload, root);
  for (;;) {
    bool connected = channel.refreshConnection();
    pollfd fds[2] = {{signalFd, POLLIN, 0}, {channel.fd(), 0, 0}};
    if (connected) fds[1].events = POLLIN | (channel.wantsWrite() ? POLLOUT : 0);
    int n = ::poll(fds, connected ? 2 : 1, kPollTimeoutMs);
    if (n < 0 && errno != EINTR) powerOff("poll failed");
    drainSignals(signalFd);

    // Every pass, not only on SIGCHLD: signals of one kind coalesce.
    if (auto exited = workload.reapChildren()) service.onWorkloadExited(*exited);
    if (connected && (fds[1].revents & (POLLIN | POLLHUP))) service.onFrames(channel.readFrames());
    if (connected && (fds[1].revents & POLLOUT)) channel.flush();
    if (service.finished()) shutDown(workload, root);
  }
}

}  // namespace s2z::guest
