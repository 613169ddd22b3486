// VmInstance and the guest agent: starting the workload, its signals, its
// graceful stop, its exit, and the guest's clock after a wake.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <spdlog/spdlog.h>

#include "agent/event_numbers.h"
#include "agent/guest_clock.h"
#include "agent/run_dir.h"
#include "agent/vm_instance.h"

namespace s2z::agent {
namespace {

// A cold boot under TCG takes 3-5 s; a loaded machine may need far more.
constexpr std::chrono::milliseconds kBootHelloTimeout{60000};
// After a restore the agent runs at once; it answers within milliseconds.
constexpr std::chrono::milliseconds kWakeHelloTimeout{5000};
constexpr std::chrono::milliseconds kCallTimeout{10000};
// After SIGKILL the workload is gone as soon as the guest kernel runs.
constexpr std::chrono::milliseconds kKillWait{5000};

pb::Request startRequest(const WorkloadSpec& w) {
  pb::Request request;
  auto* start = request.mutable_start_workload();
  for (const auto& a : w.argv) start->add_argv(a);
  for (const auto& e : w.env) start->add_env(e);
  start->set_working_dir(w.workingDir);
  start->set_user(w.user);
  start->set_hostname(w.hostname);
  for (const auto& d : w.dnsServers) start->add_dns_servers(d);
  for (const auto& d : w.dnsSearches) start->add_dns_searches(d);
  for (const auto& d : w.dnsOptions) start->add_dns_options(d);
  start->set_readonly_root(w.readonlyRoot);
  for (size_t i = 0; i < w.volumes.size(); ++i) {
    auto* volume = start->add_volumes();
    volume->set_serial(volumeSerial(i));
    volume->set_target(w.volumes[i].taskPath);
    volume->set_readonly(w.volumes[i].readonly);
  }
  return request;
}

}  // namespace

Result<void> VmInstance::startWorkload() {
  auto hello = channel_->connect(kBootHelloTimeout);
  if (!hello.ok()) {
    // What the guest kernel said last is usually why (a panic, a missing
    // device, an agent that exited): the operator sees it in the event.
    std::string console = console_ ? console_->lastLines(3) : "";
    Error e = hello.error().wrap("guest agent");
    if (!console.empty()) e.message += "; the guest console ends with: " + console;
    return e;
  }
  spdlog::info("instance {}: guest agent {} (protocol {})", taskId_, hello->agent_version(),
               hello->protocol_version());
  // Before the workload: its configuration and secrets are there when it starts.
  S2Z_TRY(syncTaskDirs(), "task directories");
  auto started = channel_->call(startRequest(*record_.spec.workload), kCallTimeout);
  if (!started.ok()) return started.error().wrap("workload");
  spdlog::info("instance {}: workload started as guest pid {}", taskId_,
               started->start_workload().pid());
  return okResult();
}

void VmInstance::onWorkloadExit(const pb::WorkloadExited& exited) {
  {
    std::lock_guard lock(mutex_);
    record_.workloadExit = WorkloadExit{true, exited.exit_code(), exited.signal(),
                                        exited.oom_killed()};
  }
  spdlog::info("instance {}: workload exited (code {}, signal {}, oom {})", taskId_,
               exited.exit_code(), exited.signal(), exited.oom_killed());
  // Durable before the guest learns we have it (it powers off then).
  {
    std::lock_guard writing(persistMutex_);
    if (auto written = persistRecord(record()); !written.ok()) {
      spdlog::error("instance {}: {}", taskId_, written.error().describe());
    }
  }
  workloadExitCv_.notify_all();
}

void VmInstance::writeWorkloadOutput(const pb::WorkloadOutput& output) {
  // output_ is set at construction and never replaced; its fds live as long
  // as this instance, which disconnects the channel before it goes.
  if (!output_) return;
  const bool toStderr = output.stream() == pb::ExecOutput::STDERR;
  const int fd = toStderr ? output_->stderrFd() : output_->stdoutFd();
  if (fd < 0) return;
  const std::string& data = output.data();
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // EPIPE: the log collector is gone (SIGPIPE is ignored by the plugin).
      spdlog::debug("instance {}: workload {} dropped: {}", taskId_, toStderr ? "stderr" : "stdout",
                    std::strerror(errno));
      return;
    }
    done += static_cast<size_t>(n);
  }
}

ExitInfo VmInstance::exitOfAgentTask() const {
  std::lock_guard lock(mutex_);
  ExitInfo info;
  const WorkloadExit& w = record_.workloadExit;
  if (!w.reported) {
    info.exitCode = 1;
    info.error = "the VM exited before its guest agent reported the workload's end";
    return info;
  }
  info.exitCode = w.exitCode;
  info.signal = w.signal;
  info.oomKilled = w.oomKilled;
  if (w.oomKilled) info.error = "the workload was killed by the guest's OOM killer";
  return info;
}

Result<void> VmInstance::signalWorkload(int signo) {
  pb::Request request;
  request.mutable_signal_process()->set_signal(signo);
  auto sent = channel_->call(std::move(request), kCallTimeout);
  if (!sent.ok()) return sent.error().wrap("signal " + taskId_);
  return okResult();
}

ExitInfo VmInstance::stopWorkload(std::chrono::milliseconds timeout, int signo) {
  auto reported = [this](std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    return workloadExitCv_.wait_for(lock, wait, [this] { return record_.workloadExit.reported; });
  };
  if (!reported(std::chrono::milliseconds(0))) {
    if (signo == 0) signo = record_.spec.workload->stopSignal != 0 ? record_.spec.workload->stopSignal : SIGTERM;
    if (timeout.count() > 0) {
      if (auto sent = signalWorkload(signo); !sent.ok()) {
        spdlog::warn("instance {}: stop: {}", taskId_, sent.error().describe());
      }
    }
    if (!reported(timeout)) {
      spdlog::info("instance {}: workload still runs after {} ms; SIGKILL", taskId_,
                   timeout.count());
      if (auto killed = signalWorkload(SIGKILL); !killed.ok()) {
        spdlog::warn("instance {}: stop: {}", taskId_, killed.error().describe());
      }
      reported(kKillWait);
    }
  }
  return exitOfAgentTask();
}

Result<void> VmInstance::syncTaskDirs() {
  if (!taskDirs_) return okResult();
  lastDirSyncNs_ = monotonicNowNs();
  auto synced = taskDirs_->sync(*channel_, kCallTimeout);
  if (!synced.ok()) {
    spdlog::warn("instance {}: task directories: {}", taskId_, synced.error().describe());
    return synced.error();
  }
  if (synced->copied + synced->removed > 0) {
    spdlog::info("instance {}: task directories: {} copied ({} bytes), {} removed", taskId_,
                 synced->copied, synced->bytes, synced->removed);
  }
  return okResult();
}

std::map<std::string, std::string> VmInstance::reconnectAfterWake() {
  auto t0 = std::chrono::steady_clock::now();
  auto sinceRestore = [t0] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  auto hello = channel_->connect(kWakeHelloTimeout);
  if (!hello.ok()) return {{"clock", "not corrected: " + hello.error().describe()}};
  double helloMs = sinceRestore();
  auto corrected = correctGuestClock(*channel_, kCallTimeout);
  if (!corrected.ok()) return {{"clock", "not corrected: " + corrected.error().describe()}};
  // restored -> corrected: how long the guest ran on the frozen clock.
  double clockMs = sinceRestore();
  std::map<std::string, std::string> annotations{
      {"clock", "corrected"},
      {"clock_lag_ms", millis(-corrected->offsetBeforeMs)},
      {"clock_error_ms", millis(corrected->errorAfterMs)},
      {"clock_ms", millis(clockMs)},
      {"agent_hello_ms", millis(helloMs)}};
  // The RNG after the clock: a round trip that would only delay it.
  if (auto reseeded = reseedGuestRng(*channel_, kCallTimeout); !reseeded.ok()) {
    spdlog::warn("instance {}: {}", taskId_, reseeded.error().describe());
    annotations["rng"] = "not reseeded: " + reseeded.error().describe();
  }
  spdlog::info("instance {}: guest clock was {:.1f} ms behind, now {:+.1f} ms (±{:.1f}); "
               "reconnect {:.1f} ms, clock corrected {:.1f} ms and RNG reseeded {:.1f} ms after the restore",
               taskId_, -corrected->offsetBeforeMs, corrected->errorAfterMs,
               corrected->uncertaintyMs, helloMs, clockMs, sinceRestore());
  // What changed while it slept (templates re-rendered), before anything
  // else (a signal for the change) reaches the workload.
  (void)syncTaskDirs();
  return annotations;
}

}  // namespace s2z::agent
