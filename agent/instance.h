// The agent's view of one task: a VM with its tap, address, BPF registration
// and scale-to-zero lifecycle. Knows nothing of Nomad; the driver maps RPCs to
// these calls and persists InstanceRecord inside the Nomad task handle.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/group_network_spec.h"
#include "agent/task_cgroup_limits.h"
#include "common/result.h"
#include "vmm/vmm.h"

namespace s2z::agent {

// Lifecycle (design.md): Booting -> Running <-> Sleeping/Waking -> Exited.
// Numbered, never renumbered: persisted in InstanceRecord.
enum class InstanceState {
  kBooting = 1,
  kRunning = 2,
  kSnapshotting = 3,  // pausing + writing the snapshot
  kSleeping = 4,
  kWaking = 5,
  kStopping = 6,
  kExited = 7,
};
const char* instanceStateName(InstanceState s);

// How deep a scale-to-zero task sleeps (agent/README.md, sleep tiers).
// Numbered, never renumbered: persisted in InstanceRecord.
enum class SleepTier {
  kLight = 1,  // vCPUs stopped, RAM pushed out of memory, the VMM kept: wake = resume
  kDeep = 2,   // snapshot, no VMM (unless a standby): wake = restore
};
const char* sleepTierName(SleepTier t);  // "light" / "deep"

// A Nomad mount attached as a virtio-blk disk and mounted in the guest.
struct VolumeSpec {
  std::filesystem::path hostPath;  // a block device or disk image file
  std::string taskPath;            // absolute, inside the workload's root
  bool readonly = false;
};

// What the guest agent (guest/agent) runs as the task: Nomad's task config
// `command`/`args`/`working_dir` and TaskConfig user/env/dns.
struct WorkloadSpec {
  std::vector<std::string> argv;    // argv[0]: the command, searched in the root's PATH
  std::vector<std::string> env;     // "KEY=value", exactly the task's environment
  std::string workingDir;           // empty: "/"
  std::string user;                 // name in the root's /etc/passwd or uid[:gid]; empty: root
  std::string hostname;
  std::vector<std::string> dnsServers, dnsSearches, dnsOptions;
  // Host directories that appear as /local, /secrets and /alloc in the guest
  // (agent/task_dirs.h); empty: none.
  std::filesystem::path localDir, secretsDir, allocDir;
  // StopTask on a sleeping task wakes it so the workload sees its signal
  // (scale_to_zero { wake_to_stop }); false: it is just discarded.
  bool wakeToStop = true;
  // Script checks (ExecTask) on a sleeping task wake it and run
  // (scale_to_zero { script_checks = "wake" }); false: they pass unrun.
  bool scriptChecksWake = false;
  // TaskConfig mounts, in order (the n-th is the disk with serial s2z-vol-n).
  std::vector<VolumeSpec> volumes;
  // docker's readonly_rootfs (guest/agent/root_filesystem.h).
  bool readonlyRoot = false;
  // Sent by StopTask when Nomad gives no signal: the image's StopSignal (as
  // docker's stop); 0: SIGTERM.
  int stopSignal = 0;
};

struct InstanceSpec {
  std::string taskId;               // Nomad task id; names only
  std::string name;                 // short unique name (files, tap)
  vmm::Hypervisor hypervisor = vmm::Hypervisor::kQemu;
  std::filesystem::path binary;
  vmm::Accelerator accelerator = vmm::Accelerator::kTcg;
  std::filesystem::path kernel, initrd, rootfs;
  std::string cmdline;              // user part; the agent appends ip=...
  unsigned vcpus = 1;
  uint64_t memoryMib = 256;
  // The task's log FIFOs (Nomad's stdout_path/stderr_path) or files; empty:
  // none. Opened once for the task's life (agent/task_output.h); the guest's
  // serial console goes to stdout.
  std::filesystem::path stdoutPath, stderrPath;
  bool scaleToZero = false;
  std::chrono::milliseconds idleTimeout{5 * 60 * 1000};
  // The tier an idle task falls asleep in, and how long a light sleep lasts
  // before it goes deep (0: it never does).
  SleepTier sleepTier = SleepTier::kLight;
  std::chrono::milliseconds deepSleepAfter{30 * 60 * 1000};
  // Whether a light sleep leaves the guest's RAM in the host's page cache
  // (wakes fastest) or drops it (the task holds only its paused VMM).
  vmm::LightSleepCache lightSleepCache = vmm::LightSleepCache::kKeep;
  // Set: the guest is our agent's (kernel+initrd with guest/agent as PID 1),
  // rootfs is the read-only root it stacks a per-task writable disk on, the
  // workload's stdout/stderr go to stdoutPath/stderrPath and the kernel
  // console to console.log in the run dir. Unset: the guest's own init is
  // the task and its console goes to stdoutPath.
  std::optional<WorkloadSpec> workload;
  uint64_t scratchMib = 1024;       // the writable disk (sparse)
  // Nomad's cgroup for the task (TaskConfig resources.linux_resources
  // .cpuset_cgroup from Nomad 1.7: the task's scope on cgroup v2, its cpuset
  // partition on v1, agent/task_cgroup.h): every VMM of the task runs in
  // the task's cgroups, so Nomad's limits apply and their memory charge is
  // the task's honest one (page cache included). Empty: the plugin's cgroup.
  std::filesystem::path cgroup;
  // Nomad's name for the task's cgroups on v1, "<alloc_id>.<task>".
  std::string cgroupScope;
  // What the start writes into those cgroups (Nomad's memory with the VMM's
  // overhead, CPU weight, reserved cores). Not in the instance record: the
  // cgroups keep them, and nothing sets them again after a restart.
  TaskLimits limits;
  // Set: the VM joins Nomad's group network namespace (tap inside it, TC
  // redirects to eth0, eth0's address); unset: host networking.
  GroupNetworkSpec group;
};

struct InstanceNetwork {
  std::string tapName;
  uint32_t ifindex = 0;
  std::string address;   // VM IPv4, dotted
  std::string gateway;   // host side
  int prefixLength = 24;
  std::string mac;
};

// The workload's end as the guest agent reported it (kept in the record: the
// guest powers off once the host has it, possibly just before a plugin crash).
struct WorkloadExit {
  bool reported = false;
  int exitCode = 0;
  int signal = 0;
  bool oomKilled = false;
};

// Everything needed to find the instance again from a new plugin process.
struct InstanceRecord {
  InstanceSpec spec;
  InstanceNetwork network;
  std::filesystem::path runDir;
  InstanceState state = InstanceState::kBooting;
  vmm::ProcessIdentity vmm;         // pid 0 when none
  bool standby = false;             // vmm is a standby waiting for a snapshot
  SleepTier sleepingTier = SleepTier::kDeep;  // the tier of the current (or last) sleep
  vmm::ProcessIdentity logHolder;   // holds the log FIFOs open; pid 0 when none
  std::filesystem::path snapshotDir;
  // The generation of the newest complete snapshot (its manifest's stamp,
  // vmm/snapshot_manifest.h): the task's deep sleeps counted from 1; 0 before
  // the first one (or one made by a plugin without manifests).
  uint64_t snapshotGeneration = 0;
  int64_t startedAtUnixNs = 0;
  WorkloadExit workloadExit;        // agent tasks only
};

struct ExitInfo {
  int exitCode = 0;
  int signal = 0;
  std::string error;      // non-empty when the instance failed (not a clean exit)
  int64_t completedAtUnixNs = 0;
  bool oomKilled = false;  // the guest's OOM killer ended the workload, or the host's the VMM
};

struct ResourceUsage {
  double cpuPercent = 0;     // 100 = one core
  double userPercent = 0;
  double systemPercent = 0;
  uint64_t cpuTicksTotal = 0;  // user+system clock ticks of the VMM
  uint64_t rssBytes = 0;
  bool measured = false;     // false when no VMM runs (deep sleep): usage is zero
  // The memory charge of the task's cgroup (InstanceSpec::cgroup), in every
  // live state: the VMM and its guest RAM's page cache, asleep too.
  uint64_t cgroupBytes = 0;
  bool cgroupMeasured = false;
  // The task's cpu cgroup: how often and how long its hard CPU limit
  // (cpu_hard_limit) held it back, in total.
  uint64_t throttledPeriods = 0;
  uint64_t throttledNanoseconds = 0;
  bool throttlingMeasured = false;
};

// A human-facing event ("Sleeping", "Woken", ...) for the task's event stream.
struct InstanceEvent {
  std::string message;
  std::map<std::string, std::string> annotations;
  std::chrono::system_clock::time_point time;
};
using EventSink = std::function<void(const InstanceEvent&)>;

// A command to run beside the workload, in its root filesystem with its
// user, environment and working directory (Nomad's alloc exec, script checks).
struct ExecSpec {
  std::vector<std::string> argv;
  bool tty = false;  // a terminal for stdin/stdout; stderr joins stdout
  uint32_t rows = 0, columns = 0;  // tty: the initial size (0: default)
  // A sleeping task is woken to run it; false: Instance::exec returns no
  // session and runs nothing.
  bool wakeIfAsleep = true;
};

// What an exec'd command produced, in order; kExited comes last, after every
// stream's eof.
struct ExecEvent {
  enum class Kind { kStdout, kStderr, kExited };
  Kind kind = Kind::kStdout;
  std::string data;  // kStdout, kStderr
  bool eof = false;  // kStdout, kStderr: that stream ended
  int exitCode = 0;  // kExited: 128 + signal when killed by one
  int signal = 0;
};

// One running exec'd command. While any session is open its task does not
// fall asleep (an idle shell is still a user at work).
class ExecSession {
 public:
  // SIGKILLs the command if it has not exited.
  virtual ~ExecSession() = default;
  virtual Result<void> writeStdin(std::string data) = 0;
  virtual Result<void> closeStdin() = 0;
  virtual Result<void> resize(uint32_t rows, uint32_t columns) = 0;
  virtual Result<void> signal(int signo) = 0;
  // The next event; kTimeout if none came in time, kUnavailable if the task
  // ended without the command's exit.
  virtual Result<ExecEvent> next(std::chrono::milliseconds timeout) = 0;
};

class Instance {
 public:
  virtual ~Instance() = default;

  virtual InstanceRecord record() const = 0;
  virtual InstanceState state() const = 0;

  // Blocks until the instance has exited or the deadline passes; nullopt on
  // timeout. Sleeping is not an exit.
  virtual std::optional<ExitInfo> waitExit(std::chrono::milliseconds timeout) = 0;

  // Stops the task. Agent-less: graceful power-off, force after timeout. With
  // the guest agent: `signo` to the workload, SIGKILL after timeout, then the
  // VM powers off; a sleeping one is woken first (WorkloadSpec::wakeToStop).
  // Keeps tap and files (DestroyTask removes them). Idempotent.
  virtual Result<void> stop(std::chrono::milliseconds timeout, int signo) = 0;
  // Kills if needed and removes tap, route, neighbour, BPF entries, files.
  virtual Result<void> destroy() = 0;
  // To the workload (guest agent; a sleeping task is woken first), else to the VMM.
  virtual Result<void> signal(int signo) = 0;
  // Runs a command beside the workload (guest agent tasks only:
  // kFailedPrecondition otherwise). A sleeping task is woken first, unless
  // !spec.wakeIfAsleep: then nullptr, and nothing ran.
  virtual Result<std::unique_ptr<ExecSession>> exec(const ExecSpec& spec) = 0;
  virtual ResourceUsage usage() = 0;
  // Number of counted packets etc. for status/inspection.
  virtual std::map<std::string, std::string> attributes() const = 0;
};

}  // namespace s2z::agent
