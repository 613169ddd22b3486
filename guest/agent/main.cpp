// s2z guest agent: PID 1 (/init) of the agent guest's initramfs. Boots the
// VM far enough to talk to the host (mounts, modules, network, the channel),
// then serves the host's requests: start the workload in the task's root
// filesystem, signal it, set the clock, reseed the RNG; reports its exit and
// powers the VM off. See guest/agent/README.md.
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "guest/agent/agent_loop.h"
#include "guest/agent/console_log.h"
#include "guest/agent/early_boot.h"
#include "guest/agent/file_io.h"
#include "guest/agent/kernel_modules.h"
#include "guest/agent/network_config.h"
#include "guest/agent/power_off.h"
#include "guest/agent/virtio_devices.h"
#include "guest/agent/workload_cgroup.h"

using namespace s2z;
using namespace s2z::guest;

namespace {

void fatalIfError(const Result<void>& r) {
  if (!r.ok()) powerOff("boot failed: " + r.error().describe());
}

// A port's name arrives in a control message after the device itself:
// give the VMM up to `ms` to name it.
std::optional<std::string> waitForPort(const std::string& name, int ms) {
  for (int waited = 0;; waited += 20) {
    if (auto path = findVirtioPort(name)) return path;
    if (waited >= ms) return std::nullopt;
    timespec pause{0, 20 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
  }
}

// The workload's stdout/stderr: the named port, else /dev/null (a VMM
// without it still runs the task, its output just goes nowhere).
UniqueFd openOutputPort(const std::string& name) {
  if (auto path = waitForPort(name, 1000)) {
    UniqueFd fd(::open(path->c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY));
    if (fd) return fd;
    logLine("cannot open " + *path + " (" + name + "); its output goes to /dev/null");
  } else {
    logLine("no virtio-serial port " + name + "; its output goes to /dev/null");
  }
  return UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
}

void configureNetwork() {
  fatalIfError(bringUpLoopback());
  auto cmdline = readFile("/proc/cmdline");
  if (!cmdline.ok()) return;
  if (auto ip = parseIpParameter(*cmdline)) fatalIfError(configureInterface(*ip));
}

std::string uptime() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld.%03ld s", static_cast<long>(ts.tv_sec), ts.tv_nsec / 1000000);
  return buf;
}

}  // namespace

int main() {
  attachStdioToConsole();
  fatalIfError(mountKernelFilesystems());
  attachStdioToConsole();  // devtmpfs now has /dev/console
  fatalIfError(setOomScoreAdj(-1000));
  // A write to an exec'd process that closed its stdin is EPIPE, not a signal.
  ::signal(SIGPIPE, SIG_IGN);
  fatalIfError(loadModules());
  fatalIfError(createWorkloadCgroup());
  configureNetwork();

  auto signals = blockLoopSignals();
  if (!signals.ok()) powerOff("boot failed: " + signals.error().describe());
  // virtio_console was just loaded: its ports may still be appearing.
  auto port = waitForPort("s2z.agent", 5000);
  if (!port) powerOff("boot failed: no virtio-serial port named s2z.agent");
  auto channel = GuestChannel::open(*port);
  if (!channel.ok()) powerOff("boot failed: " + channel.error().describe());
  UniqueFd out = openOutputPort("s2z.stdout");
  UniqueFd err = openOutputPort("s2z.stderr");

  Workload workload(out.get(), err.get());
  RootFilesystem root;
  logLine("ready after " + uptime() + " (channel " + *port + ")");
  runAgentLoop(signals->get(), *channel, workload, root);
}
