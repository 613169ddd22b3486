// VmInstance: idle detection, the sleep tiers (light: paused VMM, RAM pushed
// out; deep: snapshot, VMM exits, a standby waits if the budget allows; light
// goes deep after deep_sleep_after) and the wake (resume, restore with the
// same held tap fd, or a cold boot).
#include <spdlog/spdlog.h>

#include <cstdio>

#include "agent/event_numbers.h"
#include "agent/process_usage.h"
#include "agent/qemu_guest_agent.h"
#include "agent/run_dir.h"
#include "agent/snapshot_quarantine.h"
#include "common/failpoint.h"
#include "agent/vm_instance.h"

namespace s2z::agent {
namespace {

constexpr uint64_t kTaskDirSyncIntervalNs = 1'000'000'000;

std::string seconds(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ns) / 1e9);
  return buf;
}

}  // namespace

std::map<std::string, std::string> VmInstance::correctClockWithoutAgent() {
  if (record_.spec.hypervisor != vmm::Hypervisor::kQemu) {
    return {{"clock", "not corrected (no guest agent, and no qemu-guest-agent channel on this hypervisor)"}};
  }
  if (qemuGuestAgentAbsent_) return {{"clock", "not corrected (no guest agent; qemu-guest-agent did not answer)"}};
  auto t0 = std::chrono::steady_clock::now();
  auto corrected = correctClockWithQemuGuestAgent(qgaSocketOf(record_.runDir), kQemuGuestAgentWait);
  if (!corrected.ok()) {
    // A guest that runs no qemu-ga is not asked again at every wake.
    if (corrected.error().code == ErrorCode::kTimeout) qemuGuestAgentAbsent_ = true;
    spdlog::info("instance {}: guest clock not corrected: {}", taskId_, corrected.error().describe());
    return {{"clock", "not corrected: " + corrected.error().describe()}};
  }
  double tookMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("instance {}: qemu-guest-agent: guest clock was {:.1f} ms behind, now {:+.1f} ms", taskId_,
               -corrected->offsetBeforeMs, corrected->errorAfterMs);
  return {{"clock", "corrected by qemu-guest-agent"},
          {"clock_lag_ms", millis(-corrected->offsetBeforeMs)},
          {"clock_error_ms", millis(corrected->errorAfterMs)},
          {"clock_ms", millis(tookMs)}};
}

void VmInstance::checkIdle(uint64_t nowNs) {
  if (console_) console_->trim();  // the loop calls this for every instance, often
  // Task directories: look for changes about once a second while running.
  if (taskDirs_ && state() == InstanceState::kRunning &&
      nowNs - lastDirSyncNs_ >= kTaskDirSyncIntervalNs) {
    lastDirSyncNs_ = nowNs;
    postJob([this] {
      if (state() == InstanceState::kRunning) (void)syncTaskDirs();
    });
  }
  if (state() == InstanceState::kSleeping) {
    checkAsleep(nowNs);
    return;
  }
  bpf::ScaleToZeroKernel* kernel = deps_.kernel;
  if (!kernel || !record_.spec.scaleToZero || state() != InstanceState::kRunning) return;
  auto counters = kernel->counters(ifindex_);
  if (!counters.ok()) {
    spdlog::debug("instance {}: counters: {}", taskId_, counters.error().describe());
    return;
  }
  uint64_t lastActive;
  {
    std::lock_guard lock(mutex_);
    // An open exec session (a shell, a running check) is activity.
    if (*openExecs_ > 0) activityBaselineNs_ = nowNs;
    lastActive = std::max(counters->lastActivityNs, activityBaselineNs_);
  }
  auto timeoutNs = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(record_.spec.idleTimeout).count());
  if (nowNs < lastActive + timeoutNs) return;
  uint64_t idleNs = nowNs - lastActive;
  postJob([this, idleNs] {
    if (state() == InstanceState::kRunning) sleepNow(idleNs);
  });
}

void VmInstance::checkAsleep(uint64_t nowNs) {
  SleepTier tier;
  bool standby;
  {
    std::lock_guard lock(mutex_);
    tier = record_.sleepingTier;
    standby = record_.standby;
  }
  if (tier == SleepTier::kLight) {
    auto afterNs = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(record_.spec.deepSleepAfter).count());
    uint64_t slept = sleptAtNs_;
    if (afterNs == 0 || slept == 0 || nowNs < slept + afterNs) return;
    postJob([this] {
      if (state() == InstanceState::kSleeping && record().sleepingTier == SleepTier::kLight) sleepDeeper();
    });
    return;
  }
  // Deep: a standby that lost its place to a more recent sleeper goes.
  if (standby && !(deps_.standbys && deps_.standbys->holds(taskId_))) {
    postJob([this] {
      if (state() == InstanceState::kSleeping) dropStandby("more recently slept tasks have the standby VMMs");
    });
  }
}

bool VmInstance::postJob(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    if (jobPending_) return false;
    jobPending_ = true;
  }
  worker_.post([this, work = std::move(work)] {
    OpLock op(*this);
    work();
    // Before op's release kicks the loop, so a retried wake is not refused.
    std::lock_guard lock(mutex_);
    jobPending_ = false;
  });
  return true;
}

void VmInstance::sleepNow(uint64_t idleNs) {
  bpf::ScaleToZeroKernel& kernel = *deps_.kernel;
  // SLEEPING first: from now on any real packet emits a wake event, even one
  // that arrives while the VM is being paused or snapshotted.
  if (auto armed = kernel.setState(ifindex_, bpf::InstanceState::kSleeping); !armed.ok()) {
    spdlog::warn("instance {}: not sleeping: bpf: {}", taskId_, armed.error().describe());
    std::lock_guard lock(mutex_);
    activityBaselineNs_ = monotonicNowNs();
    return;
  }
  if (!transition(&Lifecycle::beginSleep).ok()) return;
  // Once the VMM exits the holder may be the FIFOs' only other writer.
  if (output_) {
    if (auto held = output_->ensureHolder(); !held.ok()) {
      spdlog::warn("instance {}: log FIFO holder: {}", taskId_, held.error().describe());
    }
  }
  (void)persist();
  failpoint("sleep-started");
  if (record_.spec.sleepTier == SleepTier::kLight) {
    lightSleep(idleNs);
  } else {
    deepSleep(idleNs);
  }
}

void VmInstance::sleepFailed(const Error& why) {
  // The VMM resumed the guest; retry only after another idle timeout.
  if (deps_.kernel) (void)deps_.kernel->setState(ifindex_, bpf::InstanceState::kRunning);
  (void)transition(&Lifecycle::sleepFailed);
  {
    std::lock_guard lock(mutex_);
    activityBaselineNs_ = monotonicNowNs();
  }
  (void)persist();
  emit("Sleep failed: " + why.describe());
}

void VmInstance::asleepIn(SleepTier tier) {
  {
    std::lock_guard lock(mutex_);
    record_.sleepingTier = tier;
  }
  (void)transition(&Lifecycle::slept);
  sleptAtNs_ = monotonicNowNs();
  (void)persist();
}

void VmInstance::lightSleep(uint64_t idleNs) {
  // No queue switch: the paused VMM keeps its tap queue and reads nothing
  // from it, so frames wait there for the resume.
  auto paused = vmm_->pause(record_.spec.lightSleepCache);
  if (!paused.ok()) {
    sleepFailed(paused.error());
    return;
  }
  asleepIn(SleepTier::kLight);
  emit("Sleeping", {{"idle_time", seconds(idleNs)},
                    {"tier", "light"},
                    {"ram_unmapped_mib", mebibytes(paused->unmappedBytes)},
                    {"ram_cached_mib", mebibytes(paused->cachedBytes)},
                    {"pause_ms", millis(static_cast<double>(paused->duration.count()) / 1e3)}});
}

void VmInstance::deepSleep(uint64_t idleNs) {
  auto snap = writeSnapshot(/*cancelIfWaking=*/false);
  if (!snap.ok()) {
    sleepFailed(snap.error());
    return;
  }
  asleepIn(SleepTier::kDeep);
  // The snapshot is durable: say so now, not after the standby has started.
  emit("Sleeping", {{"idle_time", seconds(idleNs)},
                    {"tier", "deep"},
                    {"snapshot_bytes", std::to_string(snap->bytes)},
                    {"snapshot_ms", millis(static_cast<double>(snap->duration.count()) / 1e3)}});
  startStandbyIfAllowed();
}

bool VmInstance::wakePending() const {
  if (!deps_.kernel) return false;
  auto bpfState = deps_.kernel->state(ifindex_);
  return bpfState.ok() && *bpfState == bpf::InstanceState::kWaking;
}

Result<vmm::SnapshotInfo> VmInstance::writeSnapshot(bool cancelIfWaking) {
  // Before QMP stop: a frame the stopped VMM read from its queue would die
  // with it (the guest cannot take it while stopped). From here every new
  // frame waits in a fresh queue that the standby or restored VMM gets.
  bool diverted = false;
  if (tap_) {
    auto moved = tap_->divert();
    diverted = moved.ok();
    if (!diverted) {
      spdlog::warn("instance {}: sleeping without a queue switch: {}", taskId_,
                   moved.error().describe());
    }
  }
  // A paused guest (light going deep) reads nothing: a frame that reached
  // its queue before the switch would die with it. Every such frame set
  // WAKING (health checks never reach the tap), so then the wake wins.
  Result<vmm::SnapshotInfo> snap =
      makeError(ErrorCode::kCancelled, "a request arrived; waking instead");
  // The next generation: the manifest written with it pairs this state with
  // this RAM, and only a restore that expects it will resume them.
  const vmm::SnapshotStamp stamp{taskId_, record().snapshotGeneration + 1};
  if (!(cancelIfWaking && wakePending())) snap = vmm_->sleep(record().snapshotDir, stamp);
  if (!snap.ok()) {
    if (diverted) {
      if (auto back = tap_->revertDivert(); !back.ok()) {
        spdlog::error("instance {}: queue switch back: {}", taskId_, back.error().describe());
      }
    }
    return snap.error();
  }
  if (diverted) tap_->commitDivert();  // the old VMM is gone: its queue too
  if (channel_) channel_->disconnect();  // its socket went with the VMM
  {
    std::lock_guard lock(mutex_);
    record_.snapshotGeneration = stamp.generation;
  }
  return snap;
}

void VmInstance::sleepDeeper() {
  // A packet that came while it slept lightly wakes it; that comes first.
  if (wakePending()) return;
  uint64_t vmmMemory = 0;
  if (auto pid = vmm_->process()) {
    if (auto t = readProcessTimes(pid->pid); t.ok()) vmmMemory = t->anonBytes;
  }
  if (!transition(&Lifecycle::beginDeepen).ok()) return;
  (void)persist();
  failpoint("deepen-started");
  uint64_t lightForNs = monotonicNowNs() - sleptAtNs_;
  auto snap = writeSnapshot(/*cancelIfWaking=*/true);
  if (!snap.ok()) {
    // Still paused, still light; the next try after another deep_sleep_after
    // (a pending wake resumes it right after this job).
    (void)transition(&Lifecycle::deepenFailed);
    sleptAtNs_ = monotonicNowNs();
    (void)persist();
    if (snap.error().code != ErrorCode::kCancelled) emit("Sleeping deeper failed: " + snap.error().describe());
    return;
  }
  asleepIn(SleepTier::kDeep);
  emit("Sleeping deeper", {{"memory_freed_mib", mebibytes(vmmMemory + snap->ramCacheDropped)},
                           {"light_for", seconds(lightForNs)},
                           {"snapshot_bytes", std::to_string(snap->bytes)},
                           {"snapshot_ms", millis(static_cast<double>(snap->duration.count()) / 1e3)}});
  startStandbyIfAllowed();
}

void VmInstance::startStandbyIfAllowed() {
  // A pending wake's ring-buffer event is handled by the loop right after this.
  if (wakePending()) return;
  if (!deps_.standbys || !deps_.standbys->claim(taskId_)) return;
  // A standby VMM already waiting for the snapshot makes the wake skip
  // process start-up.
  if (auto standby = vmm_->prepareRestore(vmConfig()); !standby.ok()) {
    spdlog::warn("instance {}: no standby VMM: {}", taskId_, standby.error().describe());
    deps_.standbys->release(taskId_);
    return;
  }
  (void)persist();
}

void VmInstance::dropStandby(const std::string& why) {
  if (!vmm_->standby()) return;
  spdlog::info("instance {}: standby VMM stopped: {}", taskId_, why);
  (void)vmm_->shutdown(std::chrono::milliseconds(0));
  (void)persist();
}

LoopCall VmInstance::handleWakeEvent(const bpf::WakeEvent& event) {
  InstanceState now;
  {
    std::lock_guard lock(mutex_);
    // A sleep in progress ends Sleeping (the wake follows) or Running.
    if (jobPending_) return LoopCall::kBusy;
    now = lifecycle_.state();
  }
  if (now != InstanceState::kSleeping) {
    spdlog::debug("instance {}: wake event ignored in state {}", taskId_, instanceStateName(now));
    return LoopCall::kDone;
  }
  uint64_t eventNs = event.timestampNs;
  // The event is out of the ring buffer; only the BPF state (WAKING) says a
  // wake is owed.
  failpoint("wake-event-taken");
  // Re-checked under the op lock: a stop may have come first.
  bool posted = postJob([this, eventNs] {
    if (state() == InstanceState::kSleeping) wakeNow(eventNs);
  });
  return posted ? LoopCall::kDone : LoopCall::kBusy;
}

void VmInstance::wakeNow(uint64_t eventNs) {
  const SleepTier tier = record().sleepingTier;
  if (state() == InstanceState::kSleeping) {
    if (!transition(&Lifecycle::beginWake).ok()) return;
    // A light wake is a resume, harmless to repeat: a plugin that dies
    // before the Running record finds the VMM and resumes it again, so the
    // fsyncs wait until the guest runs.
    if (tier == SleepTier::kDeep) (void)persist();
  }
  if (deps_.standbys) deps_.standbys->release(taskId_);
  vmm::VmConfig config = vmConfig();
  // Light: the paused VMM runs on; deep: a restore (into the standby if any).
  auto woken = tier == SleepTier::kLight
                   ? vmm_->resume()
                   : vmm_->restore(config, record().snapshotDir, {taskId_, record().snapshotGeneration});
  bool coldBoot = false;
  if (!woken.ok()) {
    if (tier == SleepTier::kLight) {
      emit("Resume failed (" + woken.error().describe() + "); cold booting");
      (void)vmm_->shutdown(std::chrono::milliseconds(0));  // whatever is left of it
    } else {
      explainFailedRestore(config, woken.error());
    }
    if (!coldBootAfterFailedWake(config, woken.error().wrap(tier == SleepTier::kLight ? "resume" : "restore"))) {
      return;
    }
    coldBoot = true;
  }
  uint64_t doneNs = monotonicNowNs();
  if (deps_.kernel) (void)deps_.kernel->setState(ifindex_, bpf::InstanceState::kRunning);
  (void)transition(&Lifecycle::woke);
  {
    std::lock_guard lock(mutex_);
    activityBaselineNs_ = doneNs;
  }
  (void)persist();
  double wakeMs = doneNs > eventNs ? static_cast<double>(doneNs - eventNs) / 1e6 : 0.0;
  std::map<std::string, std::string> annotations{{"wake_ms", millis(wakeMs)}, {"tier", sleepTierName(tier)}};
  uint64_t slept = sleptAtNs_;
  if (slept != 0 && eventNs > slept) annotations["sleep_duration"] = seconds(eventNs - slept);
  if (coldBoot) annotations["cold_boot"] = "true";
  if (usesAgent() && !coldBoot) {
    annotations.merge(reconnectAfterWake());
  } else if (!usesAgent() && !coldBoot) {
    annotations.merge(correctClockWithoutAgent());
  }
  emit("Woken", std::move(annotations));
}

void VmInstance::explainFailedRestore(const vmm::VmConfig& config, const Error& why) {
  switch (why.code) {
    case ErrorCode::kDataLoss: {
      // Never resumed, never deleted: moved aside for whoever investigates.
      auto moved = quarantineSnapshot(vmm_->snapshotFiles(config, record().snapshotDir),
                                      quarantineDirOf(record().runDir), taskId_, deps_.quarantineKept);
      emit("Snapshot quarantined; cold booting",
           {{"reason", why.describe()},
            {"quarantine", moved.ok() ? moved->string() : "failed: " + moved.error().describe()}});
      return;
    }
    case ErrorCode::kTimeout:
      emit("Restore timed out (" + why.describe() + "); cold booting",
           {{"restore_timeout_ms", std::to_string(config.restoreTimeout.count())}});
      return;
    case ErrorCode::kNotFound:
      emit("Snapshot missing (" + why.describe() + "); cold booting");
      return;
    default:
      emit("Snapshot unusable (" + why.describe() + "); cold booting");
      return;
  }
}

bool VmInstance::coldBootAfterFailedWake(const vmm::VmConfig& config, const Error& wakeError) {
  auto fail = [&](const std::string& why) {
    emit("Wake failed: " + why);
    ExitInfo info;
    info.exitCode = 1;
    info.error = "wake failed: " + why;
    finishExit(std::move(info));
    return false;
  };
  // Frames that waited for the old guest (the request that woke it) would
  // reach the new one before its server listens and be refused (RST): gone,
  // the client's retransmissions reach the new guest instead.
  if (tap_) {
    if (size_t dropped = tap_->discardQueued(); dropped > 0) {
      spdlog::info("instance {}: {} frames for the lost guest dropped before the cold boot", taskId_, dropped);
    }
  }
  // New connections wait (dropped, their port noted) until the new guest
  // serves; health checks go to the responder meanwhile (agent/boot_gate.h).
  const bool gated = deps_.kernel && deps_.kernel->setState(ifindex_, bpf::InstanceState::kBooting).ok();
  auto booted = vmm_->boot(config);
  if (!booted.ok()) return fail(wakeError.describe() + "; cold boot: " + booted.error().describe());
  // A new guest: its workload starts from the beginning, and its agent
  // from sequence 1 of a new session (the old one's numbers would make
  // each side drop the other's frames).
  if (usesAgent()) {
    channel_->startNewSession("the VM was cold booted from scratch");
    if (auto started = startWorkload(); !started.ok()) {
      (void)vmm_->shutdown(std::chrono::milliseconds(0));
      return fail("cold boot: " + started.error().describe());
    }
  }
  if (gated) {
    auto gate = waitUntilServing(*deps_.kernel, ifindex_, record().network.address, deps_.bootGate,
                                 stopRequested_);
    spdlog::info("instance {}: cold boot: {} after {} ms{}", taskId_,
                 gate.port == 0 ? std::string("no client waited")
                                : "port " + std::to_string(gate.port) + (gate.serving ? " served" : " not served"),
                 gate.waited.count(), gate.gaveWay ? " (the gate gave way to a stop)" : "");
  }
  return true;
}

}  // namespace s2z::agent
