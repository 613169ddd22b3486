#include "guest/agent/agent_loop.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <vector>

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

void runAgentLoop(int signalFd, GuestChannel& channel, Workload& workload, RootFilesystem& root,
                  OutputRelay* relay) {
  AgentService service(channel, workload, root);
  auto sendEvent = [&service](agent::v1::Event event) { service.sendEvent(std::move(event)); };
  for (;;) {
    bool connected = channel.refreshConnection();
    // A vsock listener (-1, ignored, on a virtio-serial port) wakes the loop
    // for a new host connection.
    std::vector<pollfd> fds{{signalFd, POLLIN, 0}, {channel.fd(), 0, 0}, {channel.listenFd(), POLLIN, 0}};
    if (connected) fds[1].events = POLLIN | POLLRDHUP | (channel.wantsWrite() ? POLLOUT : 0);
    // Exec'd output only while the host keeps up; it stays in the pipes meanwhile.
    service.execs().addPollFds(fds, connected && service.execOutputWanted());
    const size_t relayFrom = fds.size();
    if (relay) relay->addPollFds(fds, connected && service.execOutputWanted());
    if (!connected) fds[1].fd = -1;  // poll ignores it (see guest_channel.h)
    int n = ::poll(fds.data(), fds.size(), kPollTimeoutMs);
    if (n < 0 && errno != EINTR) powerOff("poll failed");
    drainSignals(signalFd);

    // Every pass, not only on SIGCHLD: signals of one kind coalesce.
    auto exec = [&](pid_t pid, int status) { service.execs().onReaped(pid, status); };
    if (n > 0) service.execs().onPolled(fds, 3);
    if (n > 0 && relay) relay->onPolled(fds, relayFrom, sendEvent);
    if (auto exited = workload.reapChildren(exec)) {
      // Its last output goes before its exit, as it would through a port.
      if (relay) relay->drain(sendEvent);
      service.onWorkloadExited(*exited);
    }
    if (connected && (fds[1].revents & (POLLIN | POLLHUP | POLLRDHUP))) service.onFrames(channel.readFrames());
    if (connected && (fds[1].revents & POLLOUT)) channel.flush();
    if (service.finished()) shutDown(workload, root);
  }
}

}  // namespace s2z::guest
