// VmInstance: idle detection, sleep (snapshot, VMM exits, standby waits) and
// wake (restore with the same held tap fd, or a cold boot).
#include <spdlog/spdlog.h>

#include <cstdio>

#include "agent/qemu_guest_agent.h"
#include "agent/run_dir.h"
#include "agent/vm_instance.h"

namespace s2z::agent {
namespace {

constexpr uint64_t kTaskDirSyncIntervalNs = 1'000'000'000;

std::string seconds(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string millis(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", ms);
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
  // that arrives while the snapshot is being written.
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
  auto snapshotDir = record().snapshotDir;
  auto snap = vmm_->sleep(snapshotDir);
  if (!snap.ok()) {
    // The VMM resumed the guest; retry only after another idle timeout.
    (void)kernel.setState(ifindex_, bpf::InstanceState::kRunning);
    if (diverted) {
      if (auto back = tap_->revertDivert(); !back.ok()) {
        spdlog::error("instance {}: queue switch back: {}", taskId_, back.error().describe());
      }
    }
    (void)transition(&Lifecycle::sleepFailed);
    {
      std::lock_guard lock(mutex_);
      activityBaselineNs_ = monotonicNowNs();
    }
    (void)persist();
    emit("Sleep failed: " + snap.error().describe());
    return;
  }
  if (diverted) tap_->commitDivert();  // the old VMM is gone: its queue too
  if (channel_) channel_->disconnect();  // its socket went with the VMM
  (void)transition(&Lifecycle::slept);
  sleptAtNs_ = monotonicNowNs();
  (void)persist();
  // The snapshot is durable: say so now, not after the standby has started.
  emit("Sleeping", {{"idle_time", seconds(idleNs)},
                    {"snapshot_bytes", std::to_string(snap->bytes)},
                    {"snapshot_ms", millis(static_cast<double>(snap->duration.count()) / 1e3)}});
  auto bpfState = kernel.state(ifindex_);
  bool wakePending = bpfState.ok() && *bpfState == bpf::InstanceState::kWaking;
  if (!wakePending) {
    // A standby VMM already waiting for the snapshot makes the wake skip
    // process start-up.
    if (auto standby = vmm_->prepareRestore(vmConfig()); !standby.ok()) {
      spdlog::warn("instance {}: no standby VMM: {}", taskId_, standby.error().describe());
    } else {
      (void)persist();
    }
  }
  // A pending wake's ring-buffer event is handled by the loop right after this.
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
  // Re-checked under the op lock: a stop may have come first.
  bool posted = postJob([this, eventNs] {
    if (state() == InstanceState::kSleeping) wakeNow(eventNs);
  });
  return posted ? LoopCall::kDone : LoopCall::kBusy;
}

void VmInstance::wakeNow(uint64_t eventNs) {
  if (state() == InstanceState::kSleeping) {
    if (!transition(&Lifecycle::beginWake).ok()) return;
    (void)persist();
  }
  vmm::VmConfig config = vmConfig();
  auto restored = vmm_->restore(config, record().snapshotDir);
  bool coldBoot = false;
  if (!restored.ok()) {
    bool missing = restored.error().code == ErrorCode::kNotFound;
    emit(std::string(missing ? "Snapshot missing" : "Snapshot unusable") + " (" +
         restored.error().describe() + "); cold booting");
    auto booted = vmm_->boot(config);
    if (!booted.ok()) {
      std::string why = "wake failed: restore: " + restored.error().describe() +
                        "; cold boot: " + booted.error().describe();
      emit("Wake failed: " + why);
      ExitInfo info;
      info.exitCode = 1;
      info.error = why;
      finishExit(std::move(info));
      return;
    }
    coldBoot = true;
    // A new guest: its workload starts from the beginning, and its agent
    // from sequence 1 of a new session (the old one's numbers would make
    // each side drop the other's frames).
    if (usesAgent()) {
      channel_->startNewSession("the VM was cold booted from scratch");
      if (auto started = startWorkload(); !started.ok()) {
        emit("Wake failed: " + started.error().describe());
        (void)vmm_->shutdown(std::chrono::milliseconds(0));
        ExitInfo info;
        info.exitCode = 1;
        info.error = "wake failed: cold boot: " + started.error().describe();
        finishExit(std::move(info));
        return;
      }
    }
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
  std::map<std::string, std::string> annotations{{"wake_ms", millis(wakeMs)}};
  if (sleptAtNs_ != 0 && eventNs > sleptAtNs_) {
    annotations["sleep_duration"] = seconds(eventNs - sleptAtNs_);
  }
  if (coldBoot) annotations["cold_boot"] = "true";
  if (usesAgent() && !coldBoot) {
    annotations.merge(reconnectAfterWake());
  } else if (!usesAgent() && !coldBoot) {
    annotations.merge(correctClockWithoutAgent());
  }
  emit("Woken", std::move(annotations));
}

}  // namespace s2z::agent
