#include "bench/direct_scenarios.h"

#include <fcntl.h>

#include <spdlog/spdlog.h>

#include <optional>
#include <thread>

#include "agent/host_network.h"
#include "agent/tap_device.h"
#include "bench/http_probe.h"
#include "vmm/vmm.h"

namespace s2z::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const agent::Lease kLease{"10.89.1.2", "10.89.1.1", 24, "255.255.255.0"};
constexpr const char* kTapName = "s2zbd0";

// Owns the VM and the tap; tears both down on scope exit.
struct DirectVm {
  std::unique_ptr<vmm::Vmm> vmm = vmm::makeVmm(vmm::Hypervisor::kQemu);
  std::optional<agent::TapDevice> tap;
  UniqueFd console;  // the guest console's log file, held like a task's FIFO
  uint64_t generation = 0;  // of the newest snapshot (its manifest stamp)
  ~DirectVm() {
    if (vmm) (void)vmm->shutdown(0ms);
    if (!tap) {
      if (auto again = agent::TapDevice::reopen(kTapName); again.ok()) tap = std::move(*again);
    }
    if (tap) (void)tap->destroy();
  }
};

// One round: sleep, optionally drop our tap fd, then request and restore.
Result<DirectSample> round(const BenchConfig& c, DirectVm& vm, vmm::VmConfig& config,
                           const std::filesystem::path& snapshotDir, bool holdTap) {
  const vmm::SnapshotStamp stamp{"bench", ++vm.generation};
  auto slept = vm.vmm->sleep(snapshotDir, stamp);
  if (!slept.ok()) return slept.error().wrap("sleep");
  if (!holdTap) vm.tap.reset();  // closes our only fd: the tap loses carrier
  std::this_thread::sleep_for(c.settle);

  DirectSample s;
  // What the manifest check adds to every restore, timed on its own.
  auto v0 = Clock::now();
  if (auto checked = vmm::verifySnapshot(snapshotDir, stamp); !checked.ok()) return checked.error();
  s.verifyMs = std::chrono::duration<double, std::milli>(Clock::now() - v0).count();
  Result<void> restored = okResult();
  auto before = readRetransmits();
  HttpTiming t = timedGet(kLease.address, c.guestPort, "/", 15s, [&] {
    // Stands in for the ring-buffer wake event: restore right after the SYN.
    auto r0 = Clock::now();
    if (!vm.tap) {
      auto again = agent::TapDevice::reopen(kTapName);
      if (!again.ok()) {
        restored = again.error().wrap("reopen tap");
        return;
      }
      vm.tap = std::move(*again);
      config.tapFd = vm.tap->fd();
    }
    restored = vm.vmm->restore(config, snapshotDir, stamp);
    s.restoreMs = std::chrono::duration<double, std::milli>(Clock::now() - r0).count();
  });
  auto after = readRetransmits();
  if (!restored.ok()) return restored.error().wrap("restore");
  if (t.status != 200) return makeError(ErrorCode::kUnavailable, "request: " + t.error);
  s.requestMs = t.ms;
  if (before.ok() && after.ok()) s.synRetrans = after->syn - before->syn;
  return s;
}

}  // namespace

Result<DirectResults> runDirectScenarios(const BenchConfig& c) {
  DirectVm vm;
  auto tap = agent::TapDevice::create(kTapName);
  if (!tap.ok()) return tap.error().wrap("direct: tap");
  vm.tap = std::move(*tap);
  const std::string mac = agent::HostNetwork::macFor(kLease.address);
  S2Z_TRY(agent::HostNetwork::plumb(kTapName, kLease, mac), "direct");

  vmm::VmConfig config;
  config.name = "bench-direct";
  config.runDir = c.workDir / "direct";
  std::filesystem::create_directories(config.runDir);
  config.binary = c.qemu;
  config.accelerator = vmm::detectAccelerator().accelerator;
  config.kernel = c.guestDir / "vmlinuz";
  config.initrd = c.guestDir / "initrd.img";
  config.cmdline = c.guestCmdline + " ip=" + kLease.address + "::" + kLease.gateway + ":" +
                   kLease.netmask + "::eth0:off";
  config.memoryMib = 256;
  config.tapFd = vm.tap->fd();
  config.tapName = kTapName;
  config.mac = mac;
  const auto consoleLog = config.runDir / "console.log";
  vm.console.reset(::open(consoleLog.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!vm.console) return systemError("direct: open " + consoleLog.string());
  config.consoleFd = vm.console.get();
  S2Z_TRY(vm.vmm->boot(config), "direct: boot");
  if (!waitForHttp(kLease.address, c.guestPort, 90s))
    return makeError(ErrorCode::kTimeout, "direct: guest never answered HTTP");

  DirectResults out;
  const auto snapshotDir = config.runDir / "snapshot";
  // A warm-up round first, then alternate modes so drift hits both equally.
  for (int i = 0; i <= 2 * c.directCycles; ++i) {
    bool hold = i % 2 == 0;
    auto s = round(c, vm, config, snapshotDir, hold);
    if (!s.ok()) {
      out.failures.push_back(std::string("direct ") + (hold ? "held" : "unheld") + " " +
                             std::to_string(i) + ": " + s.error().describe());
      if (vm.vmm->process()) continue;
      return s.error().wrap("direct: VM lost");
    }
    spdlog::info("bench: direct {} tap: {:.1f} ms (restore {:.1f} ms), SYN retrans {}",
                 hold ? "held" : "unheld", s->requestMs, s->restoreMs, s->synRetrans);
    if (i == 0) continue;
    (hold ? out.held : out.unheld).push_back(*s);
  }
  return out;
}

}  // namespace s2z::bench
