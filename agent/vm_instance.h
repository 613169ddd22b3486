// The agent's Instance: one VM with its tap, address, BPF registration and
// scale-to-zero lifecycle. Created by VmInstance::start (fresh boot) or
// VmInstance::recover (a record from an earlier plugin process). The agent's
// loop thread drives the scale-to-zero side through checkIdle(),
// handleWakeEvent() and handleVmmExit(); the driver calls the Instance API
// from its own threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/agent.h"
#include "agent/console_log.h"
#include "agent/guest_channel.h"
#include "agent/instance.h"
#include "agent/lifecycle.h"
#include "agent/network_backend.h"
#include "agent/process_usage.h"
#include "agent/serial_worker.h"
#include "agent/standby_budget.h"
#include "agent/task_cgroup.h"
#include "agent/task_dirs.h"
#include "agent/task_output.h"
#include "bpf/scale_to_zero_kernel.h"
#include "common/unique_fd.h"
#include "vmm/vmm.h"

namespace s2z::agent {

using VmmFactory = std::function<std::unique_ptr<vmm::Vmm>(vmm::Hypervisor)>;

// What an instance borrows from its agent; all outlive the instance.
struct InstanceDeps {
  NetworkBackend* network = nullptr;
  bpf::ScaleToZeroKernel* kernel = nullptr;  // null: scale-to-zero unavailable
  VmmFactory vmmFactory;
  std::function<void()> kickLoop;            // the loop re-reads watch fds and pending wakes
  OutputHolderCommand logHolder;             // the task name is appended
  std::chrono::milliseconds logReaderWait{10000};
  BootGateLimits bootGate;
  StandbyBudget* standbys = nullptr;         // null: no standby VMMs
  unsigned quarantineKept = 4;               // AgentConfig::quarantineKept
};

// Outcome of a loop-thread call that needs the instance's operation lock.
enum class LoopCall { kDone, kBusy };

class VmInstance final : public Instance {
 public:
  // Boots a new instance in stages (prepare runDir -> lease -> tap -> host
  // network -> BPF -> VMM boot -> Running -> persist); a failing stage undoes
  // the completed ones and the error names it ("start web: tap: ...").
  static Result<std::shared_ptr<VmInstance>> start(const AgentConfig& config,
                                                   const InstanceSpec& spec, EventSink events,
                                                   InstanceDeps deps);

  // Re-adopts an instance; prefers <runDir>/instance.json over `record`.
  // kNotFound ("VM process ... is gone") when a running VM's process no longer
  // exists (its tap, lease, BPF entries and files are then removed). A sleeping
  // instance gets a new standby if needed and wakes at once if a packet came
  // while no plugin was running.
  static Result<std::shared_ptr<VmInstance>> recover(const InstanceRecord& record,
                                                     EventSink events, InstanceDeps deps);

  ~VmInstance() override;

  // Instance API (instance.h).
  InstanceRecord record() const override;
  InstanceState state() const override;
  std::optional<ExitInfo> waitExit(std::chrono::milliseconds timeout) override;
  Result<void> stop(std::chrono::milliseconds timeout, int signo) override;
  Result<void> destroy() override;
  Result<void> signal(int signo) override;
  Result<std::unique_ptr<ExecSession>> exec(const ExecSpec& spec) override;
  ResourceUsage usage() override;
  std::map<std::string, std::string> attributes() const override;

  // --- for the agent and its loop thread ---
  const std::string& taskId() const { return taskId_; }
  uint32_t ifindex() const { return ifindex_; }

  // A counter that changes whenever the VMM process (and so its exit fd) may
  // have changed: after every operation.
  uint64_t watchGeneration() const;
  // A duplicate of the current VMM's exit fd (invalid when none runs) with
  // the generation it belongs to; nullopt while an operation holds the
  // instance (it bumps the generation when it ends). The loop watches its own
  // duplicate so a VMM closing its fd can never leave it watching a reused
  // fd number.
  std::optional<std::pair<UniqueFd, uint64_t>> dupExitFd();

  // The VMM's exit fd was readable. An exit while Running is the task's exit
  // (Exited, ExitInfo, waiters woken); a dead standby is just reaped.
  // kBusy when another operation holds the instance (retry when it ends).
  LoopCall handleVmmExit();

  // A wake event from the kernel: restores a Sleeping instance (cold boot if
  // the snapshot is missing or corrupt) on the instance's own worker thread.
  // Ignored in any other state. kBusy while a sleep or wake of this instance
  // is queued or running (retry when its op lock is released: that kicks the
  // loop); at most one restore per sleep.
  LoopCall handleWakeEvent(const bpf::WakeEvent& event);

  // Puts a Running scale-to-zero instance to sleep, on the instance's worker
  // thread, when its counted packets have been quiet for idleTimeout (boot,
  // wake and failed sleeps count as activity). nowNs: CLOCK_MONOTONIC.
  // Skipped while busy.
  void checkIdle(uint64_t nowNs);

  // Waits for a running sleep or wake and runs no more (agent shutdown: the
  // agent's dependencies are about to go). Idempotent.
  void stopWorker() { worker_.stop(); }

 private:
  VmInstance(InstanceRecord record, EventSink events, InstanceDeps deps,
             std::unique_ptr<Tap> tap, Lease lease, std::unique_ptr<vmm::Vmm> vmm,
             std::unique_ptr<TaskOutput> output, std::optional<ConsoleLog> console,
             InstanceState state);

  // Holds opMutex_; on release publishes the VMM's exit fd (and identity)
  // and kicks the loop, so the loop re-watches and retries deferred work.
  class OpLock {
   public:
    explicit OpLock(VmInstance& instance) : instance_(instance), lock_(instance.opMutex_) {}
    OpLock(VmInstance& instance, std::try_to_lock_t t)
        : instance_(instance), lock_(instance.opMutex_, t) {}
    ~OpLock();
    OpLock(const OpLock&) = delete;
    OpLock& operator=(const OpLock&) = delete;
    bool owns() const { return lock_.owns_lock(); }

   private:
    VmInstance& instance_;
    std::unique_lock<std::mutex> lock_;
  };

  // Stages of recover for one recorded state; the instance is built already.
  Result<void> recoverRunning(InstanceState recorded);
  Result<void> recoverSleeping();

  // Posts `work` to the worker; it runs under the op lock and clears
  // jobPending_ before the lock's release kicks the loop. False (nothing
  // posted) if a job is pending already.
  bool postJob(std::function<void()> work);

  // Under opMutex_: the transitions and their side effects.
  Result<void> transition(Result<void> (Lifecycle::*step)());
  void sleepNow(uint64_t idleNs);
  void lightSleep(uint64_t idleNs);
  void deepSleep(uint64_t idleNs);
  // The sleep did not happen: the guest runs on, event "Sleep failed".
  void sleepFailed(const Error& why);
  // The sleep is done: Sleeping in `tier`, persisted.
  void asleepIn(SleepTier tier);
  // Tap queue switch, snapshot, VMM exit (instance_sleep_wake.cpp); with
  // cancelIfWaking, kCancelled (nothing changed) when a packet is waiting.
  Result<vmm::SnapshotInfo> writeSnapshot(bool cancelIfWaking);
  // The BPF state says a packet for the sleeping VM has come.
  bool wakePending() const;
  // Light -> deep while asleep (after deep_sleep_after): event "Sleeping deeper".
  void sleepDeeper();
  // Sleeping: demotion due, or a standby that lost its place in the budget.
  void checkAsleep(uint64_t nowNs);
  void startStandbyIfAllowed();
  void dropStandby(const std::string& why);
  void wakeNow(uint64_t eventNs);
  // A resume or restore failed: boot the guest afresh (and its workload).
  // False when that failed too: the task has exited.
  bool coldBootAfterFailedWake(const vmm::VmConfig& config, const Error& wakeError);
  // The event for a deep wake whose restore failed; a snapshot that must not
  // be resumed (kDataLoss) is quarantined first.
  void explainFailedRestore(const vmm::VmConfig& config, const Error& why);
  void finishExit(ExitInfo info);
  Result<void> persist();
  void syncVmmFields();
  vmm::VmConfig vmConfig() const;
  void emit(const std::string& message, std::map<std::string, std::string> annotations = {});
  Result<void> releaseResources();
  // The task has exited: the log reader gets EOF once the VMM's copy is gone.
  void releaseOutput();

  // --- the guest agent (instance_workload.cpp); all under opMutex_ ---
  bool usesAgent() const { return channel_ != nullptr; }
  // After a boot: Hello, then StartWorkload (its error is the start's error).
  Result<void> startWorkload();
  // The guest reported the workload's end (reader thread): recorded and
  // persisted before the guest is acknowledged and powers off.
  void onWorkloadExit(const pb::WorkloadExited& exited);
  // The channel's reader thread: output the guest relays (no ports) to the
  // task's FIFO, blocking while it is full as a VMM writing a port would.
  void writeWorkloadOutput(const pb::WorkloadOutput& output);
  // signo to the workload, SIGKILL after timeout, then waits for the VM to
  // power off; the ExitInfo is the workload's.
  ExitInfo stopWorkload(std::chrono::milliseconds timeout, int signo);
  Result<void> signalWorkload(int signo);
  // After a restore: reconnect, set the guest's clock, reseed its RNG.
  // Returns the Woken event's annotations about it.
  std::map<std::string, std::string> reconnectAfterWake();
  // The exit a VMM exit stands for: the workload's as reported, else an error.
  ExitInfo exitOfAgentTask() const;
  bool workloadExitReported() const {
    std::lock_guard lock(mutex_);
    return record_.workloadExit.reported;
  }
  // Agent-less guests after a restore: the clock through qemu-guest-agent,
  // if the guest runs one (agent/qemu_guest_agent.h). Woken's annotations.
  std::map<std::string, std::string> correctClockWithoutAgent();
  // Copies what changed in the task's directories into the guest.
  Result<void> syncTaskDirs();

  const std::string taskId_;
  const uint32_t ifindex_;
  const uint32_t addressBe_;
  const TaskCgroup cgroup_;  // resolved from record_.spec: what every VMM of the task joins
  // Whether the host's OOM killer ended a process of the task since the last
  // look (the kernel's count in the task's memory cgroup); under opMutex_.
  bool oomKillSinceLastLook();
  // `e` with the OOM kill said, if one ended a process of the task meanwhile.
  Error withOomKill(Error e);
  uint64_t oomKillsSeen_ = 0;
  EventSink events_;
  InstanceDeps deps_;

  // opMutex_ serializes operations (boot, sleep, wake, stop, destroy, signal,
  // reaping) and guards vmm_, tap_, output_, destroyed_ and lastPackets_.
  // Lock order: opMutex_ before mutex_.
  std::mutex opMutex_;
  std::unique_ptr<vmm::Vmm> vmm_;
  std::unique_ptr<Tap> tap_;
  std::unique_ptr<TaskOutput> output_;  // null: the task has no log paths
  std::optional<ConsoleLog> console_;   // agent tasks: the kernel console file
  // Agent tasks: the guest channel. Its reader thread calls onWorkloadExit,
  // which uses mutex_ and record_: ~VmInstance disconnects it first.
  // Shared with the exec sessions it serves (they may outlive a destroy).
  std::shared_ptr<GuestChannel> channel_;
  // Exec sessions open now: while any is, the task does not fall asleep.
  std::shared_ptr<std::atomic<int>> openExecs_ = std::make_shared<std::atomic<int>>(0);
  std::unique_ptr<TaskDirSync> taskDirs_;  // agent tasks with task directories
  std::atomic<uint64_t> lastDirSyncNs_{0};  // CLOCK_MONOTONIC of the last periodic sync
  const Lease lease_;
  bool destroyed_ = false;
  // CLOCK_MONOTONIC when the last sleep (or failed demotion) finished; read
  // by the loop's idle check.
  std::atomic<uint64_t> sleptAtNs_{0};
  // Set by stop() before it waits for the op lock: a cold boot's gate
  // (agent/boot_gate.h) holding the lock opens instead of waiting on.
  std::atomic<bool> stopRequested_{false};
  bool qemuGuestAgentAbsent_ = false;  // it did not answer after a wake: not asked again

  // mutex_ guards the fields below; held only briefly (never across VMM calls).
  mutable std::mutex mutex_;
  std::condition_variable exitCv_;
  Lifecycle lifecycle_;
  InstanceRecord record_;
  std::optional<ExitInfo> exit_;
  uint64_t watchGeneration_ = 0;
  uint64_t activityBaselineNs_ = 0;  // boot, wake or failed sleep: counts as activity
  UsageSampler sampler_;
  bool jobPending_ = false;  // a sleep or wake is queued or running on worker_
  std::condition_variable workloadExitCv_;  // record_.workloadExit.reported changed
  // Serializes writes of instance.json (the channel's reader thread persists too).
  std::mutex persistMutex_;
  // The last write of instance.json failed (under persistMutex_): the
  // operator has had one event about it; the next success clears it.
  bool persistFailing_ = false;

  // Last member: destroyed (joined) first, while everything a job uses exists.
  SerialWorker worker_;
};

// How long a restored agent-less guest's qemu-guest-agent may take to answer
// before its clock is left alone (a guest without one never answers).
inline constexpr std::chrono::milliseconds kQemuGuestAgentWait{1000};

// How long a stopped agent task's VM may take to power off by itself after
// its workload has ended, before its VMM is killed.
inline constexpr std::chrono::milliseconds kPowerOffWait{5000};

// The guest kernel command line: the user's `user` plus "console=ttyS0" when
// it names no console (so the guest console reaches the task's stdout) and
// "ip=<ipParam>" (the kernel's static address configuration).
std::string guestCmdline(const std::string& user, const std::string& ipParam);

// What ip= cannot say, for the guest agent (guest/agent/network_config.h):
// " s2z.mtu=<bytes>" unless the link has Ethernet's 1500, and
// " s2z.route=<dst>/<len>[,<gateway>]" per route of the lease.
std::string guestAgentNetworkParams(const Lease& lease);

// The virtio-blk serial of the task's index-th volume, and the disks of all.
std::string volumeSerial(size_t index);
std::vector<vmm::VmConfig::AgentDevices::Volume> volumeDisks(const std::vector<VolumeSpec>& volumes);

// CLOCK_MONOTONIC in ns (the clock of the kernel's timestamps).
uint64_t monotonicNowNs();

}  // namespace s2z::agent
