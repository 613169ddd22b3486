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
#include "guest/agent/output_relay.h"
#include "guest/agent/power_off.h"
#include "guest/agent/virtio_devices.h"
#include "guest/agent/workload_cgroup.h"
#include "guestlink/frame_codec.h"

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

// `word` is one of the command line's whitespace-separated parameters.
bool hasKernelParameter(const std::string& cmdline, const std::string& word) {
  size_t pos = 0;
  while (pos < cmdline.size()) {
    size_t end = cmdline.find_first_of(" \t\n", pos);
    if (end == std::string::npos) end = cmdline.size();
    if (cmdline.compare(pos, end - pos, word) == 0 && end - pos == word.size()) return true;
    pos = end + 1;
  }
  return false;
}

struct OpenedChannel {
  GuestChannel channel;
  std::string name;  // for the log
};

// Over vsock ("s2z.channel=vsock" on the kernel command line: the host's
// choice for Cloud Hypervisor, which has no virtio-serial) the agent listens
// on its vsock port; otherwise the channel is the virtio-serial port.
Result<OpenedChannel> openChannel(bool overVsock) {
  if (overVsock) {
    auto channel = GuestChannel::listenVsock(guestlink::kAgentVsockPort);
    if (!channel.ok()) return channel.error();
    return OpenedChannel{std::move(*channel), "vsock port " + std::to_string(guestlink::kAgentVsockPort)};
  }
  // virtio_console was just loaded: its ports may still be appearing.
  auto port = waitForPort("s2z.agent", 5000);
  if (!port) return makeError(ErrorCode::kNotFound, "no virtio-serial port named s2z.agent");
  auto channel = GuestChannel::open(*port);
  if (!channel.ok()) return channel.error();
  return OpenedChannel{std::move(*channel), *port};
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
  auto cmdlineFile = readFile("/proc/cmdline");
  const std::string cmdline = cmdlineFile.ok() ? *cmdlineFile : "";
  const bool overVsock = hasKernelParameter(cmdline, "s2z.channel=vsock");
  auto channel = openChannel(overVsock);
  if (!channel.ok()) powerOff("boot failed: " + channel.error().describe());
  // Without virtio-serial (vsock) the output has no ports: it is relayed.
  std::optional<OutputRelay> relay;
  UniqueFd out, err;
  if (overVsock || hasKernelParameter(cmdline, "s2z.output=channel")) {
    auto created = OutputRelay::create();
    if (!created.ok()) powerOff("boot failed: " + created.error().describe());
    relay.emplace(std::move(*created));
  } else {
    out = openOutputPort("s2z.stdout");
    err = openOutputPort("s2z.stderr");
  }

  Workload workload(relay ? relay->stdoutFd() : out.get(), relay ? relay->stderrFd() : err.get());
  RootFilesystem root;
  logLine("ready after " + uptime() + " (channel " + channel->name + (relay ? ", output relayed" : "") + ")");
  runAgentLoop(signals->get(), channel->channel, workload, root, relay ? &*relay : nullptr);
}
