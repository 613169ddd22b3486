// CloudHypervisorVmm: vmm::Vmm over the Cloud Hypervisor REST API.
// Guest RAM is <runDir>/guest-ram (vmm/guest_ram_file.h), one shared memory
// zone, as QEMU's is: snapshots hold device state only.
// Boot: create the RAM file, spawn `cloud-hypervisor --api-socket
// path=<runDir>/ch.sock`, wait for vmm.ping, vm.create, vm.add-net (tap fd
// over SCM_RIGHTS), vm.boot.
// Light sleep: vm.pause, then the RAM written back and paged out (pause()).
// Sleep: vm.pause, vm.snapshot into a temp dir, fsync (and the RAM file's
// fdatasync), manifest, rename, vmm.shutdown, the RAM's page cache dropped.
// Resume (after a sleep cut short by the plugin's death): vm.resume if paused.
// Restore: a fresh VMM (or the standby one), vm.restore with net_fds and the
// tap fd (the VMM maps the RAM file again), the RAM file marked in use,
// vm.resume; all of it within config.restoreTimeout (ch_restore_watchdog.h),
// else the VMM is killed and restore is kTimeout.
// Shutdown: vm.power-button, wait up to the grace for the VMM to exit with its
// guest, then vm.shutdown, vmm.shutdown and finally SIGKILL.
// Not thread-safe: the agent serializes calls per instance.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>

#include "vmm/cloud_hypervisor/ch_api_client.h"
#include "vmm/cloud_hypervisor/ch_restore_watchdog.h"
#include "vmm/cloud_hypervisor/ch_version.h"
#include "vmm/vmm.h"
#include "vmm/vmm_process.h"

namespace s2z::vmm::ch {

// One running cloud-hypervisor process plus the client for its socket.
struct ChProcess {
  VmmProcess process;
  std::filesystem::path socket;
  ChVersion version;
};

class CloudHypervisorVmm final : public Vmm {
 public:
  CloudHypervisorVmm() = default;
  ~CloudHypervisorVmm() override = default;  // VMs outlive the plugin: never kills

  Hypervisor kind() const override { return Hypervisor::kCloudHypervisor; }
  Result<void> boot(const VmConfig& config) override;
  Result<PauseInfo> pause(LightSleepCache cache) override;
  Result<SnapshotInfo> sleep(const std::filesystem::path& snapshotDir,
                             const SnapshotStamp& stamp) override;
  Result<void> resume() override;
  Result<void> prepareRestore(const VmConfig& config) override;
  Result<void> restore(const VmConfig& config, const std::filesystem::path& snapshotDir,
                       const SnapshotStamp& expected) override;
  std::vector<std::filesystem::path> snapshotFiles(
      const VmConfig& config, const std::filesystem::path& snapshotDir) const override;
  Result<void> shutdown(std::chrono::milliseconds grace) override;
  Result<void> signal(int signo) override;
  std::optional<ProcessIdentity> process() const override;
  bool standby() const override { return standby_.has_value(); }
  Result<void> reattach(const VmConfig& config, const ProcessIdentity& identity,
                        bool standby) override;
  int exitFd() const override;
  ExitStatus reapExit() override;

  // How long boot and prepareRestore wait for the API socket after spawning
  // (a restore waits only as long as its watchdog has left).
  static constexpr std::chrono::milliseconds kApiWait{10000};
  // How long one vmm.ping of that wait may take.
  static constexpr std::chrono::milliseconds kPingWait{1000};
  // How long vmm.shutdown may take before the process is killed.
  static constexpr std::chrono::milliseconds kExitWait{5000};

 private:
  using Clock = std::chrono::steady_clock;

  // Spawns a VMM for config and waits until vmm.ping answers, at the latest
  // by deadline; one that has not answered by then is killed and reaped. The
  // VMM gets no inherited fds: the tap fd travels over the API socket.
  Result<ChProcess> launch(const VmConfig& config, const std::string& socketName,
                           Clock::time_point deadline);
  // Restores into vmm (which has no VM yet); on success the VM runs.
  // Each call gets what is left of watchdog; kTimeout (naming the call) once
  // it has run out. vmm is left for the caller to retire.
  Result<void> restoreInto(ChProcess& vmm, const VmConfig& config,
                           const std::filesystem::path& snapshotDir,
                           const RestoreWatchdog& watchdog);
  // A VMM for restore: the standby one if it is alive, else a new one
  // started by deadline.
  Result<ChProcess> takeRestoreVmm(const VmConfig& config, Clock::time_point deadline);

  std::optional<ChProcess> active_;   // runs the guest
  std::optional<ChProcess> standby_;  // asleep: waits for vm.restore
  // The running guest's RAM file; empty for a VM restored from an older
  // plugin's snapshot, whose RAM is anonymous (nothing to write back).
  std::filesystem::path guestRam_;
  // pause() paused the running VM and nothing has touched it since: resume()
  // is vm.resume alone, without asking vm.info first.
  bool lightPaused_ = false;
};

}  // namespace s2z::vmm::ch
