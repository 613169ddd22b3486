// The QEMU backend of vmm::Vmm: one QEMU process per VM (microvm, TCG or KVM),
// driven over QMP. Guest RAM lives in a shared file in runDir, so a snapshot is
// only device state (x-ignore-shared) and sleeping frees the host's memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>

#include "vmm/qemu/qmp_client.h"
#include "vmm/vmm.h"
#include "vmm/vmm_process.h"

namespace s2z::vmm {

// Creates a QemuVmm (no process started).
std::unique_ptr<Vmm> makeQemuVmm();

// Runs `<binary> --version`. kNotFound when the binary is missing,
// kFailedPrecondition when older than 6.0 or the output is not QEMU's.
Result<HypervisorInfo> probeQemu(const std::filesystem::path& binary);

// "QEMU emulator version 7.2.22 (Debian ...)" -> "7.2.22"; empty when absent.
std::string parseQemuVersion(const std::string& output);

namespace qemu {

// Not thread-safe: the agent serializes calls per VM. Files in runDir:
// qmp.sock, guest-ram, qemu.log; snapshots: <snapshotDir>/state.
// sleep() makes QEMU exit and reaps it itself: an exitFd() watched elsewhere
// turns readable then and must be ignored (process() is nullopt afterwards).
// A failed restore kills the QEMU it used (standby included).
class QemuVmm final : public Vmm {
 public:
  QemuVmm() = default;
  // Does not kill the VM: it must outlive the plugin (shutdown() is explicit).
  ~QemuVmm() override = default;

  Hypervisor kind() const override { return Hypervisor::kQemu; }
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
  bool standby() const override { return standby_ && process_.valid(); }
  Result<void> reattach(const VmConfig& config, const ProcessIdentity& process,
                        bool standby) override;
  int exitFd() const override { return process_.exitFd(); }
  ExitStatus reapExit() override;

 private:
  // Starts QEMU (incoming: waiting for a snapshot) and waits until QMP
  // answers, at most until deadline. On failure kills it and returns QEMU's
  // own complaint from its log.
  Result<void> launch(const VmConfig& config, bool incoming,
                      std::chrono::steady_clock::time_point deadline);
  // Connects to the QMP socket QEMU inherited and waits for its greeting, or
  // its exit, until deadline.
  Result<QmpClient> awaitQmp(const std::filesystem::path& socket,
                             std::chrono::steady_clock::time_point deadline);
  // Loads the snapshot (stateFd; -1: loaded already) into the incoming QEMU
  // and resumes the guest.
  Result<void> loadSnapshot(int stateFd, std::chrono::steady_clock::time_point deadline);
  // The QMP connection, (re)connected on demand (after reattach).
  Result<QmpClient*> qmp();
  Result<void> waitMigration(bool incoming, std::chrono::steady_clock::time_point deadline);
  // Kills the process (if any) and forgets it and its QMP connection.
  void killAndForget();
  std::string logTail() const;

  VmConfig config_;
  VmmProcess process_;
  std::optional<QmpClient> qmp_;
  bool standby_ = false;
  // This object's pause() stopped the guest and nothing has run a migration
  // since: `cont` alone resumes it, without the checks a VMM found paused
  // after a plugin restart needs (two QMP round trips of a light wake).
  bool lightPaused_ = false;
  uint64_t logOffset_ = 0;  // qemu.log size before the current process started
};

}  // namespace qemu
}  // namespace s2z::vmm
