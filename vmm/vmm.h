// The one interface every hypervisor backend implements (qemu, cloud-hypervisor).
// The agent drives a VM only through this; it never learns which backend runs.
// Tap and console fds are passed in, borrowed: the caller keeps holding them
// across sleep so frames for a sleeping VM queue in the tap and the task's log
// reader never sees its last writer go.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/light_sleep_cache.h"
#include "vmm/snapshot_manifest.h"

namespace s2z::vmm {

enum class Hypervisor { kQemu, kCloudHypervisor };
enum class Accelerator { kKvm, kTcg };

const char* hypervisorName(Hypervisor h);      // "qemu" / "cloud-hypervisor"
const char* acceleratorName(Accelerator a);    // "kvm" / "tcg"

// Serials of the guest agent's root and scratch disks (guest/agent/root_filesystem.h).
inline constexpr const char* kRootDiskSerial = "s2z-root";
inline constexpr const char* kScratchDiskSerial = "s2z-scratch";

// Everything a backend needs to boot or restore one VM.
struct VmConfig {
  std::string name;                   // short unique name, safe in file names
  std::filesystem::path runDir;       // per-VM dir (sockets, RAM file, snapshot); exists
  std::filesystem::path binary;       // hypervisor executable
  Accelerator accelerator = Accelerator::kTcg;
  std::filesystem::path kernel;
  std::filesystem::path initrd;       // empty: none
  std::filesystem::path rootfs;       // empty: none; else a virtio-blk disk
  std::string cmdline;                // complete guest kernel command line
  unsigned vcpus = 1;
  uint64_t memoryMib = 256;
  int tapFd = -1;                     // borrowed; the caller keeps it open
  std::string tapName;                // informational (logs, CH net id)
  std::string mac;                    // "52:54:00:xx:xx:xx"
  // The NIC's MTU as the guest is told it (virtio-net's VIRTIO_NET_F_MTU:
  // the guest driver starts eth0 at it, agent or not); 0: not told, 1500.
  uint32_t mtu = 0;
  // Serial console output: a write end (a task's stdout FIFO, or a file),
  // borrowed like tapFd; -1: discard. Passed as an fd, never as a path: a VMM
  // that opened a FIFO by name would block in open() once its reader is gone.
  int consoleFd = -1;
  // The guest agent's devices (guest/agent); nullopt: an agent-less guest.
  // Its disks are told apart by serial (device order is not stable on
  // virtio-mmio): kRootDiskSerial, kScratchDiskSerial, Volume::serial.
  struct AgentDevices {
    // Unix socket the VMM listens on: QEMU's host end of the guest's
    // "s2z.agent" port; Cloud Hypervisor's hybrid-vsock socket, through which
    // the agent's vsock port is reached (vmm/hybrid_vsock.h).
    std::filesystem::path socket;
    // Write ends for the guest's "s2z.stdout" / "s2z.stderr" ports (the
    // task's log FIFOs), borrowed like consoleFd; -1: discard. QEMU only:
    // Cloud Hypervisor's guest relays its output over the channel.
    int stdoutFd = -1, stderrFd = -1;
    // The writable disk the guest joins with rootfs by overlayfs; rootfs is
    // then attached read-only. Disks are found in the guest by serial.
    std::filesystem::path scratchDisk;
    // The task's volumes (Nomad mounts), each a virtio-blk disk the guest
    // finds by serial.
    struct Volume {
      std::filesystem::path path;  // a block device or disk image file
      std::string serial;
      bool readonly = false;
    };
    std::vector<Volume> volumes;
  };
  std::optional<AgentDevices> agent;
  // Agent-less guests: the host end (a unix socket the VMM listens on) of a
  // virtio-serial port named org.qemu.guest_agent.0, for qemu-guest-agent.
  // QEMU only; empty: none.
  std::filesystem::path guestAgentSocket;
  // The cgroup directories every VMM process of this VM joins (Nomad's
  // cgroups for the task: one on v2, one per hierarchy on v1); empty: the
  // plugin's own.
  std::vector<std::filesystem::path> cgroups;
  // The restore watchdog: a restore (VMM start or standby, QMP, loading the
  // device state, resume) that has not finished by then is killed and fails
  // with kTimeout; the caller cold boots.
  std::chrono::milliseconds restoreTimeout{5000};
};

// Identifies a process across plugin restarts: a pid alone can be reused.
struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t startTime = 0;  // field 22 of /proc/<pid>/stat (clock ticks since boot)
};

struct SnapshotInfo {
  std::filesystem::path dir;          // where the snapshot lives
  uint64_t bytes = 0;                 // size of the snapshot files (device state, plus RAM if copied)
  std::chrono::microseconds duration{0};  // pause -> VMM exited
  uint64_t ramCacheDropped = 0;       // bytes of the RAM file dropped from the page cache after
};

// A light sleep: the guest paused, its RAM pushed out of host memory.
struct PauseInfo {
  uint64_t unmappedBytes = 0;             // guest RAM the VMM no longer maps
  uint64_t cachedBytes = 0;               // of it still in the page cache, clean (reclaimable)
  std::chrono::microseconds duration{0};  // stop -> RAM paged out
};

struct ExitStatus {
  int exitCode = 0;
  int signal = 0;       // terminating signal number, 0 if exited normally
  bool known = true;    // false when the process was not our child (recovered): code unknown
};

struct HypervisorInfo {
  std::string version;  // e.g. "7.2.19" or "v45.0"
};

class Vmm {
 public:
  virtual ~Vmm() = default;

  virtual Hypervisor kind() const = 0;

  // Starts the VMM in its own session and boots the guest.
  // Pre: no VMM running for this object. Fails with kVmmError/kSystem; on
  // failure no process is left behind.
  virtual Result<void> boot(const VmConfig& config) = 0;

  // Light sleep: stops the guest's vCPUs and pushes its RAM out of the VMM
  // (written back to the RAM file, paged out: clean page cache the kernel
  // reclaims first, vmm/guest_ram_release.h); the VMM process stays, so
  // resume() wakes it with its translation cache and devices warm. A paused
  // VMM reads nothing from its tap: frames wait in the tap queue.
  // `cache` says whether the paged-out RAM may stay in the page cache.
  // Pre: running. On failure the guest runs on. Backends whose RAM is not a
  // file release what they can (unmappedBytes says how much).
  virtual Result<PauseInfo> pause(LightSleepCache cache) = 0;

  // Deep sleep: pauses the guest (or takes it paused by pause()), writes a
  // snapshot into snapshotDir atomically (temp name, fsync, rename), makes
  // the guest RAM durable, writes the manifest stamped with `stamp`
  // (vmm/snapshot_manifest.h), lets the VMM process exit and drops the RAM
  // file's page cache. Everything durable happens before the exit.
  // Pre: running or paused. On failure the guest is left as it was (a
  // running one resumed, a paused one paused), and the error says why (disk
  // full, VMM error, ...).
  virtual Result<SnapshotInfo> sleep(const std::filesystem::path& snapshotDir,
                                     const SnapshotStamp& stamp) = 0;

  // Lets a paused guest run again: the wake from a light sleep, or a sleep
  // cut short (the plugin died between the pause and the VMM's exit, and a
  // new plugin has reattached the still-living VMM; an unfinished snapshot
  // is cancelled first). Ok when the guest runs already. Pre: a VMM (not a
  // standby).
  virtual Result<void> resume() = 0;

  // Optionally starts a standby VMM that waits for a snapshot, so restore()
  // skips process start-up. Pre: asleep. Backends without standby return ok.
  virtual Result<void> prepareRestore(const VmConfig& config) = 0;

  // Restores the guest from snapshotDir with config.tapFd and resumes it,
  // once its manifest proves it is `expected` and intact. Pre: asleep
  // (standby or not). Fails with kNotFound for a missing snapshot, kDataLoss
  // for one that must not be resumed (corrupt, truncated, stale, foreign),
  // kTimeout when config.restoreTimeout ran out, kVmmError when the VMM
  // refused it; on failure no VMM process is left.
  virtual Result<void> restore(const VmConfig& config, const std::filesystem::path& snapshotDir,
                               const SnapshotStamp& expected) = 0;

  // The files that make up a snapshot in snapshotDir (the dir itself and
  // any file outside it, such as QEMU's guest RAM): what a quarantine moves.
  virtual std::vector<std::filesystem::path> snapshotFiles(
      const VmConfig& config, const std::filesystem::path& snapshotDir) const = 0;

  // Asks the guest to power off, waits up to grace, then kills the VMM
  // (and any standby). Idempotent: ok when nothing runs.
  virtual Result<void> shutdown(std::chrono::milliseconds grace) = 0;

  // Sends a signal to the VMM process. kFailedPrecondition when none runs.
  virtual Result<void> signal(int signo) = 0;

  // The VMM process currently running the guest (or the standby when asleep
  // and standby is set), nullopt when none.
  virtual std::optional<ProcessIdentity> process() const = 0;
  virtual bool standby() const = 0;

  // Adopts a VMM process started by an earlier plugin process.
  // Fails with kNotFound if the process is gone or its start time differs.
  virtual Result<void> reattach(const VmConfig& config, const ProcessIdentity& process,
                                bool standby) = 0;

  // An fd that becomes readable when the current VMM process exits (a pidfd);
  // -1 when none runs. Valid until the next boot/restore/reattach.
  virtual int exitFd() const = 0;

  // Collects the exit status once exitFd() is readable; forgets the process.
  virtual ExitStatus reapExit() = 0;
};

// Creates a backend. No process is started.
std::unique_ptr<Vmm> makeVmm(Hypervisor kind);

// Runs the binary to learn its version; kNotFound if missing, kFailedPrecondition
// if too old or unusable (the message says why).
Result<HypervisorInfo> probeHypervisor(Hypervisor kind, const std::filesystem::path& binary);

// KVM only when /dev/kvm can really run an ordinary guest (hardware
// virtualization present, API usable), TCG otherwise. reason says why.
struct AcceleratorProbe {
  Accelerator accelerator;
  std::string reason;
};
AcceleratorProbe detectAccelerator();

}  // namespace s2z::vmm
