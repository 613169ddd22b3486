#include "vmm/cloud_hypervisor/ch_backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include "vmm/cloud_hypervisor/ch_json.h"
#include "vmm/cloud_hypervisor/ch_restore_watchdog.h"
#include "vmm/cloud_hypervisor/ch_snapshot_dir.h"
#include "vmm/cloud_hypervisor/ch_vmm.h"
#include "vmm/guest_ram_file.h"
#include "vmm/guest_ram_release.h"
#include "vmm/vmm_socket_path.h"

namespace s2z::vmm::ch {
namespace {

using Clock = std::chrono::steady_clock;

Error noVm(const char* op) {
  return makeError(ErrorCode::kFailedPrecondition,
                   std::string(op) + ": no cloud-hypervisor VM is running");
}

// Stops a VMM we no longer want: vmm.shutdown, then SIGKILL after the wait.
void stopProcess(ChProcess& vmm, std::chrono::milliseconds wait) {
  if (!vmm.process.valid()) return;
  if (vmm.process.running()) {
    ChApiClient api(vmm.socket, std::chrono::milliseconds(1000));
    (void)api.shutdownVmm();  // may close without answering: the exit is what counts
    if (!vmm.process.waitExit(wait)) (void)vmm.process.kill();
  }
  vmm.process.reap();
  std::error_code ec;
  std::filesystem::remove(vmm.socket, ec);
}

// A VMM that did not answer in time: SIGKILL (which also ends a stopped
// process), reaped; asking it to exit would only wait for it again.
void killProcess(ChProcess& vmm) {
  if (!vmm.process.valid()) return;
  const auto pid = vmm.process.identity().pid;
  if (auto killed = vmm.process.kill(); !killed.ok()) {
    spdlog::error("cloud-hypervisor pid {}: {}", pid, killed.error().describe());
  }
  std::error_code ec;
  std::filesystem::remove(vmm.socket, ec);
}

// A VMM whose restore failed is not reused. One that timed out is killed;
// one that answered is asked to exit (its log then ends cleanly) with what
// is left of the watchdog, and killed if that is not enough.
void retire(ChProcess& vmm, const RestoreWatchdog& watchdog, const Error& why) {
  if (!vmm.process.valid()) return;
  if (why.code == ErrorCode::kTimeout || watchdog.expired()) {
    spdlog::warn("cloud-hypervisor: restore watchdog kills pid {}: {}",
                 vmm.process.identity().pid, why.describe());
    killProcess(vmm);
    return;
  }
  if (vmm.process.running()) {
    ChApiClient api(vmm.socket, std::min(watchdog.left(), std::chrono::milliseconds(1000)));
    (void)api.shutdownVmm();  // may close without answering: the exit is what counts
    (void)vmm.process.waitExit(watchdog.left());
  }
  killProcess(vmm);  // reaps one that exited; kills one that did not
}

// After vm.power-button: true once the guest has powered off within grace.
// The VMM normally exits with its guest; one that stays shows it in vm.info.
bool waitGuestPoweredOff(ChProcess& vmm, ChApiClient& api, std::chrono::milliseconds grace) {
  constexpr std::chrono::milliseconds kSlice{100};
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    if (vmm.process.waitExit(std::min(left, kSlice))) return true;
    auto info = api.info();
    if (info.ok() && info->value("state", "") == "Shutdown") return true;
  }
}

// True when the snapshot's guest RAM is the run dir's file, not a dump in it.
bool ramInFile(const std::filesystem::path& snapshotDir) {
  std::error_code ec;
  return !std::filesystem::exists(snapshotDir / "memory-ranges", ec);
}

// The end of the VMM's log, for errors about a VMM that died early.
std::string logTail(const std::filesystem::path& log) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::streamoff>(in.tellg());
  std::streamoff from = size > 400 ? size - 400 : 0;
  in.seekg(from);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  return tail;
}

// Cloud Hypervisor binds the vsock socket without removing what is there
// (EADDRINUSE: the boot or restore fails) and leaves it behind when it exits:
// the last VMM's socket must go first (API_FACTS.md, "vsock").
Result<void> removeStaleVsockSocket(const VmConfig& config) {
  if (!config.agent) return okResult();
  std::error_code ec;
  std::filesystem::remove(config.agent->socket, ec);
  if (ec) {
    return makeError(ErrorCode::kSystem,
                     "remove the old vsock socket " + config.agent->socket.string() + ": " + ec.message());
  }
  return okResult();
}

}  // namespace

Result<ChProcess> CloudHypervisorVmm::launch(const VmConfig& config, const std::string& socketName,
                                             Clock::time_point deadline) {
  ChProcess vmm;
  vmm.socket = config.runDir / socketName;
  std::error_code ec;
  std::filesystem::remove(vmm.socket, ec);  // a stale socket would fool the wait

  SpawnOptions opts;
  opts.argv = {config.binary.string(), "--api-socket", "path=" + vmmBindPath(vmm.socket)};
  opts.logPath = config.runDir / "cloud-hypervisor.log";
  opts.workDir = config.runDir;
  opts.cgroups = config.cgroups;
  if (config.consoleFd >= 0) opts.fds.push_back({config.consoleFd, kConsoleChildFd});
  auto spawned = VmmProcess::spawn(opts);
  if (!spawned.ok()) return spawned.error().wrap("start cloud-hypervisor");
  vmm.process = std::move(*spawned);

  while (true) {
    // Each ping gets at most kPingWait, and never more than is left.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    ChApiClient api(vmm.socket,
                    std::clamp(left, std::chrono::milliseconds(1), kPingWait));
    auto ping = api.ping();
    if (ping.ok()) {
      auto version = parseChVersion(ping->version);
      if (!version.ok()) {
        stopProcess(vmm, kExitWait);
        return version.error().wrap("cloud-hypervisor vmm.ping");
      }
      vmm.version = *version;
      if (auto supported = checkSupported(vmm.version); !supported.ok()) {
        stopProcess(vmm, kExitWait);
        return supported.error();
      }
      return vmm;
    }
    if (!vmm.process.running()) {
      stopProcess(vmm, kExitWait);
      return makeError(ErrorCode::kVmmError, "cloud-hypervisor exited before its API answered: " +
                                                 logTail(opts.logPath));
    }
    if (ping.error().code == ErrorCode::kTimeout || Clock::now() >= deadline) {
      // It never answered: it would not answer vmm.shutdown either.
      spdlog::warn("cloud-hypervisor pid {}: API not answering in time ({}); killed",
                   vmm.process.identity().pid, ping.error().describe());
      killProcess(vmm);
      return ping.error().wrap("wait for the cloud-hypervisor API");
    }
    if (ping.error().code != ErrorCode::kUnavailable) {
      stopProcess(vmm, kExitWait);
      return ping.error().wrap("wait for the cloud-hypervisor API");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<void> CloudHypervisorVmm::boot(const VmConfig& config) {
  if (active_) {
    return makeError(ErrorCode::kFailedPrecondition, "boot: a cloud-hypervisor VM already runs");
  }
  if (config.tapFd < 0) return makeError(ErrorCode::kInvalidArgument, "boot: no tap fd");
  S2Z_TRY(removeStaleVsockSocket(config), "boot");
  // A fresh boot starts from empty RAM, in a file the VMM maps but does not create.
  const auto ram = guestRamPath(config.runDir);
  S2Z_TRY(createGuestRamFile(ram, config.memoryMib << 20), "boot");
  auto vmm = launch(config, "ch.sock", Clock::now() + kApiWait);
  if (!vmm.ok()) return vmm.error().wrap("boot");

  ChApiClient api(vmm->socket);
  auto steps = [&]() -> Result<void> {
    S2Z_TRY(api.createVm(buildVmConfig(config)), "create");
    S2Z_TRY(api.addNet(buildNetConfig(config.mac, config.mtu), config.tapFd), "add net");
    S2Z_TRY(api.boot(), "start");
    return okResult();
  }();
  if (!steps.ok()) {
    stopProcess(*vmm, kExitWait);
    return steps.error().wrap("boot");
  }
  spdlog::info("cloud-hypervisor {}: booted {} (pid {})", vmm->version.str(), config.name,
               vmm->process.identity().pid);
  active_ = std::move(*vmm);
  guestRam_ = ram;
  lightPaused_ = false;
  return okResult();
}

// Light sleep is vm.pause: the VMM stops its vCPUs and, with them, stops
// taking frames from the tap. Then, as on QEMU, the guest RAM file is written
// back and paged out of the VMM (clean, reclaimable page cache), dropped from
// the cache too with kDrop, or left mapped with kMapped
// (vmm/guest_ram_release.h). A RAM that cannot be released resumes the guest.
Result<PauseInfo> CloudHypervisorVmm::pause(LightSleepCache cache) {
  if (!active_) return noVm("pause");
  auto start = Clock::now();
  ChApiClient api(active_->socket);
  S2Z_TRY(api.pause(), "pause");
  if (guestRam_.empty()) {
    // Restored from an older plugin's snapshot: anonymous RAM, which without
    // swap stays where it is until the next boot.
    lightPaused_ = true;
    return PauseInfo{0, 0, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start)};
  }
  auto released = releaseGuestRam(active_->process.exitFd(), active_->process.identity().pid,
                                  guestRam_,
                                  cache == LightSleepCache::kMapped ? RamAdvice::kKeepMapped
                                                                    : RamAdvice::kPageOut);
  if (!released.ok()) {
    if (auto resumed = api.resume(); !resumed.ok()) {
      return released.error().wrap("pause").wrap("(resume failed too: " +
                                                 resumed.error().describe() + ")");
    }
    return released.error().wrap("pause");
  }
  uint64_t cached = released->cachedAfter;
  if (cache == LightSleepCache::kDrop) {
    // A failed drop still leaves a paused guest, whose RAM is merely cached.
    auto dropped = dropGuestRamCache(guestRam_);
    if (dropped.ok()) {
      cached = dropped->cachedAfter;
    } else {
      spdlog::warn("cloud-hypervisor: paused, but the guest RAM stays in the page cache: {}",
                   dropped.error().describe());
    }
  }
  lightPaused_ = true;
  PauseInfo info{released->unmapped(), cached, {}};
  info.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  spdlog::info("cloud-hypervisor pid {}: paused; guest RAM written back, {} KiB of it unmapped, "
               "{} KiB in the page cache ({}), in {} us",
               active_->process.identity().pid, info.unmappedBytes / 1024, cached / 1024,
               lightSleepCacheName(cache), info.duration.count());
  return info;
}

Result<SnapshotInfo> CloudHypervisorVmm::sleep(const std::filesystem::path& snapshotDir,
                                               const SnapshotStamp& stamp) {
  if (!active_) return noVm("sleep");
  lightPaused_ = false;  // a failed sleep may leave it paused or running
  auto start = Clock::now();
  ChApiClient api(active_->socket);
  // A light sleep going deeper finds the VM paused already (vm.pause would
  // refuse it), and a failure leaves it paused.
  auto vmInfo = api.info();
  if (!vmInfo.ok()) return vmInfo.error().wrap("sleep");
  const bool wasRunning = vmInfo->value("state", "") != "Paused";
  if (wasRunning) S2Z_TRY(api.pause(), "sleep: pause");

  // From here on every failure resumes a guest that ran: it keeps running.
  auto resumeAfter = [&](const Error& why) -> Error {
    if (!wasRunning) return why.wrap("sleep");
    auto resumed = api.resume();
    if (!resumed.ok()) {
      return why.wrap("sleep").wrap("(resume failed too: " + resumed.error().describe() + ")");
    }
    return why.wrap("sleep");
  };

  auto temp = prepareTempDir(snapshotDir);
  if (!temp.ok()) return resumeAfter(temp.error());
  auto snap = api.snapshot(buildSnapshotConfig(*temp));
  if (!snap.ok()) {
    removeQuietly(*temp);
    return resumeAfter(snap.error().wrap("snapshot"));
  }
  // The RAM the snapshot names is durable before the manifest pairs them.
  if (auto synced = guestRam_.empty() ? okResult() : syncGuestRam(guestRam_); !synced.ok()) {
    removeQuietly(*temp);
    return resumeAfter(synced.error());
  }
  if (auto written = writeManifestFor(*temp, stamp, guestRam_); !written.ok()) {
    removeQuietly(*temp);
    return resumeAfter(written.error());
  }
  auto bytes = commitSnapshotDir(*temp, snapshotDir);
  if (!bytes.ok()) {
    removeQuietly(*temp);
    return resumeAfter(bytes.error());
  }

  // The snapshot is durable: the VMM may go. A VMM that refuses to exit is
  // killed; the sleep still succeeded.
  stopProcess(*active_, kExitWait);
  active_.reset();
  SnapshotInfo info;
  info.dir = snapshotDir;
  info.bytes = *bytes;
  info.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  // Deep sleep holds no host memory: the RAM file's cache goes too (a
  // restore maps it back on demand).
  if (guestRam_.empty()) {
    // Anonymous RAM (an older plugin's snapshot): it went with the VMM.
  } else if (auto dropped = dropGuestRamCache(guestRam_); dropped.ok()) {
    info.ramCacheDropped = dropped->dropped();
  } else {
    spdlog::warn("cloud-hypervisor: guest RAM stays cached: {}", dropped.error().describe());
  }
  return info;
}

Result<void> CloudHypervisorVmm::resume() {
  if (!active_) return noVm("resume");
  ChApiClient api(active_->socket);
  if (std::exchange(lightPaused_, false)) {
    S2Z_TRY(api.resume(), "resume");
    return okResult();
  }
  auto info = api.info();
  if (!info.ok()) return info.error().wrap("resume");
  std::string state = info->value("state", "");
  if (state == "Running") return okResult();
  if (state != "Paused") {
    return makeError(ErrorCode::kVmmError, "resume: the VM is " + state + ", not paused");
  }
  // vm.snapshot is one synchronous request: the VMM finished it even though
  // the plugin that asked died, so only the pause is left to undo.
  S2Z_TRY(api.resume(), "resume");
  spdlog::info("cloud-hypervisor: resumed a VM left paused by an interrupted sleep");
  return okResult();
}

Result<void> CloudHypervisorVmm::prepareRestore(const VmConfig& config) {
  if (active_) return makeError(ErrorCode::kFailedPrecondition, "prepare restore: VM is running");
  if (standby_ && standby_->process.running()) return okResult();
  if (standby_) stopProcess(*standby_, kExitWait);
  standby_.reset();
  auto vmm = launch(config, "ch-standby.sock", Clock::now() + kApiWait);
  if (!vmm.ok()) return vmm.error().wrap("prepare restore");
  standby_ = std::move(*vmm);
  return okResult();
}

Result<void> CloudHypervisorVmm::restoreInto(ChProcess& vmm, const VmConfig& config,
                                             const std::filesystem::path& snapshotDir,
                                             const RestoreWatchdog& watchdog) {
  if (!capabilitiesFor(vmm.version).netFdsOnRestore) {
    return makeError(ErrorCode::kFailedPrecondition,
                     "cloud-hypervisor " + vmm.version.str() + " cannot take tap fds on restore");
  }
  S2Z_TRY(removeStaleVsockSocket(config), "restore");
  int fds[1] = {config.tapFd};
  // A fresh client per call: each gets what is left of the watchdog.
  auto restored = ChApiClient(vmm.socket, watchdog.left())
                      .restore(buildRestoreConfig(snapshotDir, 1), fds);
  if (!restored.ok()) return watchdog.verdict(restored.error(), "vm.restore").wrap("restore");
  // From vm.resume on the guest writes its RAM: this snapshot no longer
  // matches it. (One an older plugin took of anonymous RAM copied it in.)
  if (ramInFile(snapshotDir)) S2Z_TRY(markRamInUse(guestRamPath(config.runDir)), "restore");
  auto resumed = ChApiClient(vmm.socket, watchdog.left()).resume();
  if (!resumed.ok()) return watchdog.verdict(resumed.error(), "vm.resume").wrap("resume");
  return okResult();
}

Result<ChProcess> CloudHypervisorVmm::takeRestoreVmm(const VmConfig& config,
                                                     Clock::time_point deadline) {
  std::optional<ChProcess> standby = std::move(standby_);
  standby_.reset();
  if (standby && standby->process.running()) return std::move(*standby);
  if (standby) stopProcess(*standby, kExitWait);  // exited: only reaped
  return launch(config, "ch.sock", deadline);
}

Result<void> CloudHypervisorVmm::restore(const VmConfig& config,
                                         const std::filesystem::path& snapshotDir,
                                         const SnapshotStamp& expected) {
  // The watchdog: everything below, from the VMM start (or the standby)
  // through vm.restore and vm.resume, within
  // restoreTimeout; each step gets what is left. On expiry the VMM is
  // killed (SIGKILL also ends a stopped one) and reaped: kTimeout, and the
  // caller cold boots.
  const RestoreWatchdog watchdog(config.restoreTimeout);
  if (active_) return makeError(ErrorCode::kFailedPrecondition, "restore: VM is running");
  if (config.tapFd < 0) return makeError(ErrorCode::kInvalidArgument, "restore: no tap fd");
  S2Z_TRY(checkSnapshotDir(snapshotDir), "restore");
  if (auto checked = verifySnapshot(snapshotDir, expected); !checked.ok()) {
    // Nothing may be left running for a snapshot that will not be resumed.
    if (standby_) stopProcess(*standby_, kExitWait);
    standby_.reset();
    return checked.error().wrap("restore");
  }

  auto vmm = takeRestoreVmm(config, watchdog.deadline());
  if (!vmm.ok()) {
    return watchdog.verdict(vmm.error(), "the cloud-hypervisor start").wrap("restore");
  }
  auto restored = restoreInto(*vmm, config, snapshotDir, watchdog);
  if (!restored.ok()) {
    retire(*vmm, watchdog, restored.error());
    return restored.error().wrap("restore " + snapshotDir.string());
  }
  spdlog::info("cloud-hypervisor {}: restored {} from {}", vmm->version.str(), config.name,
               snapshotDir.string());
  active_ = std::move(*vmm);
  lightPaused_ = false;
  guestRam_ = ramInFile(snapshotDir) ? guestRamPath(config.runDir) : std::filesystem::path();
  return okResult();
}

std::vector<std::filesystem::path> CloudHypervisorVmm::snapshotFiles(
    const VmConfig& config, const std::filesystem::path& snapshotDir) const {
  return {snapshotDir, guestRamPath(config.runDir)};
}

Result<void> CloudHypervisorVmm::shutdown(std::chrono::milliseconds grace) {
  if (active_) {
    ChApiClient api(active_->socket, std::chrono::milliseconds(2000));
    // The power button lets the guest shut down cleanly. A guest that ignores
    // it within the grace (or no grace at all) gets vm.shutdown, which is
    // abrupt.
    bool guestOff = false;
    if (grace.count() > 0 && active_->process.running()) {
      auto pressed = api.powerButton();
      if (!pressed.ok()) {
        spdlog::warn("cloud-hypervisor vm.power-button: {}", pressed.error().describe());
      } else if (!(guestOff = waitGuestPoweredOff(*active_, api, grace))) {
        spdlog::info("cloud-hypervisor: guest of pid {} still up {} ms after the power button",
                     active_->process.identity().pid, grace.count());
      }
    }
    if (!guestOff && active_->process.running()) {
      auto down = api.shutdownVm();
      if (!down.ok()) spdlog::warn("cloud-hypervisor vm.shutdown: {}", down.error().describe());
    }
    stopProcess(*active_, kExitWait);
    active_.reset();
  }
  if (standby_) {
    stopProcess(*standby_, grace);
    standby_.reset();
  }
  return okResult();
}

Result<void> CloudHypervisorVmm::signal(int signo) {
  ChProcess* vmm = active_ ? &*active_ : standby_ ? &*standby_ : nullptr;
  if (!vmm) return makeError(ErrorCode::kFailedPrecondition, "signal: no cloud-hypervisor process");
  return vmm->process.signal(signo);
}

std::optional<ProcessIdentity> CloudHypervisorVmm::process() const {
  if (active_) return active_->process.identity();
  if (standby_) return standby_->process.identity();
  return std::nullopt;
}

Result<void> CloudHypervisorVmm::reattach(const VmConfig& config,
                                          const ProcessIdentity& identity, bool standby) {
  if (active_ || standby_) {
    return makeError(ErrorCode::kFailedPrecondition, "reattach: already attached");
  }
  auto adopted = VmmProcess::adopt(identity);
  if (!adopted.ok()) return adopted.error().wrap("reattach");
  ChProcess vmm;
  vmm.process = std::move(*adopted);
  // A VMM restored from the standby keeps the standby's socket name, so both
  // names are tried; vmm.ping's pid tells which socket is this process's.
  Error last = makeError(ErrorCode::kNotFound, "reattach: no API socket answers for pid " +
                                                   std::to_string(identity.pid));
  for (const char* name : {"ch.sock", "ch-standby.sock"}) {
    ChApiClient api(config.runDir / name, std::chrono::milliseconds(2000));
    auto ping = api.ping();
    if (!ping.ok()) {
      last = ping.error().wrap("reattach");
      continue;
    }
    if (ping->pid != 0 && ping->pid != identity.pid) continue;  // another VMM's socket
    auto version = parseChVersion(ping->version);
    if (!version.ok()) return version.error().wrap("reattach");
    vmm.socket = api.socket();
    vmm.version = *version;
    (standby ? standby_ : active_) = std::move(vmm);
    std::error_code ec;
    const auto ram = guestRamPath(config.runDir);
    guestRam_ = std::filesystem::exists(ram, ec) ? ram : std::filesystem::path();
    return okResult();
  }
  return last;
}

int CloudHypervisorVmm::exitFd() const {
  if (active_) return active_->process.exitFd();
  if (standby_) return standby_->process.exitFd();
  return -1;
}

ExitStatus CloudHypervisorVmm::reapExit() {
  std::optional<ChProcess>& vmm = active_ ? active_ : standby_;
  if (!vmm) return ExitStatus{0, 0, false};
  ExitStatus status = vmm->process.reap();
  std::error_code ec;
  std::filesystem::remove(vmm->socket, ec);
  vmm.reset();
  return status;
}

}  // namespace s2z::vmm::ch

namespace s2z::vmm {

std::unique_ptr<Vmm> makeCloudHypervisorVmm() {
  return std::make_unique<ch::CloudHypervisorVmm>();
}

}  // namespace s2z::vmm
