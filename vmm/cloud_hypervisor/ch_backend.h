// CloudHypervisorVmm: vmm::Vmm over the Cloud Hypervisor REST API.
// Boot: spawn `cloud-hypervisor --api-socket path=<runDir>/ch.sock`, wait for
// vmm.ping, vm.create, vm.add-net (tap fd over SCM_RIGHTS), vm.boot.
// Sleep: vm.pause, vm.snapshot into a temp dir, fsync, rename, vmm.shutdown.
// Resume (after a sleep cut short by the plugin's death): vm.resume if paused.
// Restore: a fresh VMM (or the standby one), vm.restore with net_fds and the
// tap fd, vm.resume unless the VMM resumed itself.
// Shutdown: vm.power-button, wait up to the grace for the VMM to exit with its
// guest, then vm.shutdown, vmm.shutdown and finally SIGKILL.
// Not thread-safe: the agent serializes calls per instance.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>

#include "vmm/cloud_hypervisor/ch_api_client.h"
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
  Result<PauseInfo> pause() override;
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

  // How long to wait for the API socket after spawning.
  static constexpr std::chrono::milliseconds kApiWait{10000};
  // How long vmm.shutdown may take before the process is killed.
  static constexpr std::chrono::milliseconds kExitWait{5000};

 private:
  // Spawns a VMM for config and waits until vmm.ping answers. The VMM gets no
  // inherited fds: the tap fd travels over the API socket.
  Result<ChProcess> launch(const VmConfig& config, const std::string& socketName);
  // Restores into vmm (which has no VM yet); on success the VM runs.
  // onDemand=false forces the copy restore even where OnDemand is supported.
  Result<void> restoreInto(ChProcess& vmm, const VmConfig& config,
                           const std::filesystem::path& snapshotDir, bool onDemand);
  // A VMM for restore: the standby one if it is alive, else a new one.
  Result<ChProcess> takeRestoreVmm(const VmConfig& config);

  std::optional<ChProcess> active_;   // runs the guest
  std::optional<ChProcess> standby_;  // asleep: waits for vm.restore
};

}  // namespace s2z::vmm::ch
