// VmInstance: queries, stop/destroy/signal, exit handling and persistence.
// Start and recovery are in instance_start.cpp, sleep and wake in
// instance_sleep_wake.cpp.
#include "agent/vm_instance.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <time.h>

#include <spdlog/spdlog.h>

#include "agent/run_dir.h"
#include "agent/task_cgroup.h"

namespace s2z::agent {

uint64_t monotonicNowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

uint32_t addressToBe(const std::string& dotted) {
  in_addr a{};
  if (::inet_pton(AF_INET, dotted.c_str(), &a) != 1) return 0;
  return a.s_addr;
}

int64_t unixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// True if `cmdline` has a parameter starting with `key` (whole words only,
// so "xconsole=" does not count as "console=").
bool hasParam(const std::string& cmdline, const std::string& key) {
  for (size_t at = cmdline.find(key); at != std::string::npos; at = cmdline.find(key, at + 1)) {
    if (at == 0 || cmdline[at - 1] == ' ' || cmdline[at - 1] == '\t') return true;
  }
  return false;
}

bool readable(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace

std::string guestCmdline(const std::string& user, const std::string& ipParam) {
  std::string out = user;
  auto add = [&out](const std::string& param) {
    if (!out.empty() && out.back() != ' ') out += " ";
    out += param;
  };
  // The stand-in and Nomad collect the guest console from the VMM's serial
  // port (ttyS0); without console= the kernel would log to tty0 only.
  if (!hasParam(user, "console=")) add("console=ttyS0");
  add("ip=" + ipParam);
  return out;
}

std::string guestAgentNetworkParams(const Lease& lease) {
  std::string out;
  if (lease.mtu != 0 && lease.mtu != 1500) out += " s2z.mtu=" + std::to_string(lease.mtu);
  for (const auto& route : lease.routes) {
    out += " s2z.route=" + route.destination + "/" + std::to_string(route.prefixLength);
    if (!route.gateway.empty()) out += "," + route.gateway;
  }
  return out;
}

VmInstance::OpLock::~OpLock() {
  if (!lock_.owns_lock()) return;
  instance_.syncVmmFields();
  lock_.unlock();
  if (instance_.deps_.kickLoop) instance_.deps_.kickLoop();
}

VmInstance::VmInstance(InstanceRecord record, EventSink events, InstanceDeps deps,
                       std::unique_ptr<Tap> tap, Lease lease, std::unique_ptr<vmm::Vmm> vmm,
                       std::unique_ptr<TaskOutput> output, std::optional<ConsoleLog> console,
                       InstanceState state)
    : taskId_(record.spec.taskId),
      ifindex_(tap ? tap->ifindex() : record.network.ifindex),
      addressBe_(addressToBe(record.network.address)),
      cgroup_(taskCgroupOnThisHost(record.spec.cgroup, record.spec.cgroupScope)),
      events_(std::move(events)),
      deps_(std::move(deps)),
      vmm_(std::move(vmm)),
      tap_(std::move(tap)),
      output_(std::move(output)),
      console_(std::move(console)),
      lease_(std::move(lease)),
      lifecycle_(state),
      record_(std::move(record)) {
  record_.state = state;
  record_.network.ifindex = ifindex_;
  activityBaselineNs_ = monotonicNowNs();
  (void)oomKillSinceLastLook();  // the baseline: kills before this plugin looked are not this VMM's
  if (record_.spec.workload) {
    // QEMU gives the agent a virtio-serial port, Cloud Hypervisor a vsock port.
    ChannelAddress address{agentSocketOf(record_.runDir), std::nullopt};
    if (vmm_ && vmm_->kind() == vmm::Hypervisor::kCloudHypervisor) {
      address.vsockPort = guestlink::kAgentVsockPort;
    }
    channel_ = std::make_shared<GuestChannel>(
        std::move(address),
        [this](const pb::WorkloadExited& exited) { onWorkloadExit(exited); },
        [this](const pb::WorkloadOutput& output) { writeWorkloadOutput(output); });
    const WorkloadSpec& w = *record_.spec.workload;
    std::vector<TaskDirMapping> dirs;
    if (!w.localDir.empty()) dirs.push_back({w.localDir, "/local", {}});
    if (!w.secretsDir.empty()) dirs.push_back({w.secretsDir, "/secrets", {}});
    // alloc/logs holds this very task's log FIFOs and files: the host's.
    if (!w.allocDir.empty()) dirs.push_back({w.allocDir, "/alloc", {"logs"}});
    if (!dirs.empty()) taskDirs_ = std::make_unique<TaskDirSync>(std::move(dirs));
  }
}

VmInstance::~VmInstance() {
  if (channel_) {
    channel_->abandonExecs("the task is gone");
    channel_->disconnect();
  }
}

InstanceRecord VmInstance::record() const {
  std::lock_guard lock(mutex_);
  return record_;
}

InstanceState VmInstance::state() const {
  std::lock_guard lock(mutex_);
  return lifecycle_.state();
}

uint64_t VmInstance::watchGeneration() const {
  std::lock_guard lock(mutex_);
  return watchGeneration_;
}

std::optional<std::pair<UniqueFd, uint64_t>> VmInstance::dupExitFd() {
  // Not OpLock: releasing this must not bump the generation again.
  std::unique_lock op(opMutex_, std::try_to_lock);
  if (!op.owns_lock()) return std::nullopt;
  UniqueFd dup;
  int fd = vmm_ ? vmm_->exitFd() : -1;
  if (fd >= 0) dup.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  return std::make_pair(std::move(dup), watchGeneration());
}

std::optional<ExitInfo> VmInstance::waitExit(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  exitCv_.wait_for(lock, timeout, [&] { return exit_.has_value(); });
  return exit_;
}

Result<void> VmInstance::transition(Result<void> (Lifecycle::*step)()) {
  InstanceState from, to;
  {
    std::lock_guard lock(mutex_);
    from = lifecycle_.state();
    auto moved = (lifecycle_.*step)();
    if (!moved.ok()) return moved;
    to = lifecycle_.state();
    record_.state = to;
  }
  spdlog::info("instance {}: {} -> {}", record_.spec.name, instanceStateName(from),
               instanceStateName(to));
  return okResult();
}

void VmInstance::syncVmmFields() {
  std::lock_guard lock(mutex_);
  auto process = vmm_ ? vmm_->process() : std::nullopt;
  record_.vmm = process.value_or(vmm::ProcessIdentity{});
  record_.standby = vmm_ && vmm_->standby();
  record_.logHolder = output_ ? output_->holder() : vmm::ProcessIdentity{};
  ++watchGeneration_;
}

Result<void> VmInstance::persist() {
  syncVmmFields();
  if (destroyed_) return okResult();  // the runDir is gone on purpose
  bool firstFailure = false, recovered = false;
  Result<void> written = okResult();
  {
    std::lock_guard writing(persistMutex_);
    written = persistRecord(record());
    firstFailure = !written.ok() && !persistFailing_;
    recovered = written.ok() && persistFailing_;
    persistFailing_ = !written.ok();
  }
  if (!written.ok()) spdlog::error("instance {}: {}", taskId_, written.error().describe());
  if (recovered) spdlog::info("instance {}: instance.json written again", taskId_);
  // Most writes are not a step that can fail (a wake, a finished sleep): the
  // task goes on, but a plugin restarted now would recover it from the
  // previous record. One event per failing stretch, not one per write.
  if (firstFailure) {
    emit("Task state not saved: " + written.error().describe(),
         {{"record", recordPath(record().runDir).string()}});
  }
  return written;
}

vmm::VmConfig VmInstance::vmConfig() const {
  InstanceRecord r = record();
  vmm::VmConfig c;
  c.name = r.runDir.filename().string();
  c.runDir = r.runDir;
  c.binary = r.spec.binary;
  c.accelerator = r.spec.accelerator;
  c.kernel = r.spec.kernel;
  c.initrd = r.spec.initrd;
  c.rootfs = r.spec.rootfs;
  c.cmdline = guestCmdline(r.spec.cmdline, r.network.address + "::" + r.network.gateway + ":" +
                                                lease_.netmask + "::eth0:off");
  // The tap has eth0's MTU (group networks). The NIC tells the guest the
  // same (virtio-net's MTU feature), so its eth0 starts at it with or without
  // the agent; the guest agent sets it as well and adds eth0's other routes
  // (guest/agent/network_config.h). A guest without the agent gets only
  // ip='s two routes: ip= has no field for more.
  if (r.spec.workload) c.cmdline += guestAgentNetworkParams(lease_);
  if (lease_.mtu != 0 && lease_.mtu != 1500) c.mtu = lease_.mtu;
  c.vcpus = r.spec.vcpus;
  c.memoryMib = r.spec.memoryMib;
  c.tapFd = tap_ ? tap_->fd() : -1;
  c.tapName = r.network.tapName;
  c.mac = r.network.mac;
  if (r.spec.workload) {
    // The workload's output has ports of its own; the console is a file.
    c.consoleFd = console_ ? console_->fd() : -1;
    c.agent = vmm::VmConfig::AgentDevices{agentSocketOf(r.runDir),
                                          output_ ? output_->stdoutFd() : -1,
                                          output_ ? output_->stderrFd() : -1,
                                          scratchDiskOf(r.runDir),
                                          volumeDisks(r.spec.workload->volumes)};
  } else {
    c.consoleFd = output_ ? output_->stdoutFd() : -1;
    c.guestAgentSocket = qgaSocketOf(r.runDir);
  }
  c.cgroups = cgroup_.joined();
  return c;
}

std::vector<vmm::VmConfig::AgentDevices::Volume> volumeDisks(const std::vector<VolumeSpec>& volumes) {
  std::vector<vmm::VmConfig::AgentDevices::Volume> disks;
  for (size_t i = 0; i < volumes.size(); ++i) {
    disks.push_back({volumes[i].hostPath, volumeSerial(i), volumes[i].readonly});
  }
  return disks;
}

std::string volumeSerial(size_t index) { return "s2z-vol-" + std::to_string(index); }

void VmInstance::emit(const std::string& message, std::map<std::string, std::string> annotations) {
  spdlog::info("instance {}: event \"{}\"", taskId_, message);
  if (!events_) return;
  events_(InstanceEvent{message, std::move(annotations), std::chrono::system_clock::now()});
}

void VmInstance::finishExit(ExitInfo info) {
  info.completedAtUnixNs = unixNowNs();
  (void)transition(&Lifecycle::exited);
  // A stopped instance must not keep redirecting health checks or waking.
  if (deps_.kernel) (void)deps_.kernel->setState(ifindex_, bpf::InstanceState::kRunning);
  if (channel_) {
    channel_->abandonExecs("the task has exited");
    channel_->disconnect();
  }
  releaseOutput();
  (void)persist();
  {
    std::lock_guard lock(mutex_);
    exit_ = std::move(info);
  }
  exitCv_.notify_all();
}

namespace {

constexpr const char* kOomKilled =
    "VM process killed by the host's OOM killer: the task's cgroup reached its memory limit "
    "(the task's memory + the plugin's vmm_memory_overhead)";

}  // namespace

bool VmInstance::oomKillSinceLastLook() {
  auto kills = cgroupOomKills(cgroup_);
  if (!kills.ok()) return false;
  bool more = *kills > oomKillsSeen_;
  oomKillsSeen_ = *kills;
  return more;
}

Error VmInstance::withOomKill(Error e) {
  if (oomKillSinceLastLook()) e.message += std::string(" (") + kOomKilled + ")";
  return e;
}

LoopCall VmInstance::handleVmmExit() {
  OpLock op(*this, std::try_to_lock);
  if (!op.owns()) return LoopCall::kBusy;
  if (!vmm_ || !readable(vmm_->exitFd())) return LoopCall::kDone;
  InstanceState now = state();
  vmm::ExitStatus status = vmm_->reapExit();
  if (now == InstanceState::kSleeping && record().sleepingTier == SleepTier::kLight) {
    // The paused VMM held the guest, RAM and all: it is lost, as a crash
    // while running would lose it.
    ExitInfo info;
    info.exitCode = status.exitCode;
    info.signal = status.signal;
    if (usesAgent()) info = exitOfAgentTask();
    if (status.signal == SIGKILL && oomKillSinceLastLook()) {
      info.oomKilled = true;
      info.error = kOomKilled;
    }
    if (info.error.empty()) {
      info.error = "VM process ended while sleeping lightly (code " + std::to_string(status.exitCode) +
                   ", signal " + std::to_string(status.signal) + ")";
    }
    spdlog::warn("instance {}: {}", taskId_, info.error);
    finishExit(std::move(info));
    return LoopCall::kDone;
  }
  if (now == InstanceState::kSleeping) {
    // Only the standby can exit here; the wake restores without one.
    spdlog::warn("instance {}: standby VMM exited (code {}, signal {}); the next wake starts "
                 "a fresh one", taskId_, status.exitCode, status.signal);
    (void)persist();  // so a recovery does not look for it
    return LoopCall::kDone;
  }
  if (now != InstanceState::kRunning && now != InstanceState::kBooting) return LoopCall::kDone;
  ExitInfo info;
  info.exitCode = status.exitCode;
  info.signal = status.signal;
  if (status.signal == SIGKILL && oomKillSinceLastLook()) {
    // Like the exec driver's: the task ended by its memory limit is OOM
    // killed, whichever process of its cgroup the kernel chose.
    if (usesAgent()) info = exitOfAgentTask();
    info.signal = SIGKILL;
    info.exitCode = 128 + SIGKILL;
    info.oomKilled = true;
    info.error = kOomKilled;
  } else if (usesAgent()) {
    info = exitOfAgentTask();
  } else if (!status.known) {
    info.error = "VM process exited; its status is unknown (adopted after a plugin restart)";
  } else if (status.signal != 0) {
    info.error = "VM process killed by signal " + std::to_string(status.signal);
  } else if (status.exitCode != 0) {
    info.error = "VM process exited with code " + std::to_string(status.exitCode);
  }
  spdlog::info("instance {}: VMM exited (code {}, signal {})", taskId_, status.exitCode,
               status.signal);
  finishExit(std::move(info));
  return LoopCall::kDone;
}

Result<void> VmInstance::stop(std::chrono::milliseconds timeout, int signo) {
  stopRequested_ = true;  // before waiting: a boot gate holding the lock gives way
  OpLock op(*this);
  if (state() == InstanceState::kExited) return okResult();
  // Apps expect a graceful shutdown: wake a sleeping workload to get it.
  bool wake = usesAgent() && record_.spec.workload->wakeToStop && timeout.count() > 0;
  if (wake && state() == InstanceState::kSleeping) wakeNow(monotonicNowNs());
  if (state() == InstanceState::kExited) return okResult();  // the wake failed
  bool workloadRuns = usesAgent() && state() == InstanceState::kRunning;
  // A sleeping guest is not asked to power off (a paused one could not):
  // its VMM, or standby, just goes.
  bool asleep = state() == InstanceState::kSleeping;
  S2Z_TRY(transition(&Lifecycle::beginStop), "stop " + taskId_);
  (void)persist();
  ExitInfo info;
  if (workloadRuns) {
    info = stopWorkload(timeout, signo);
  } else if (usesAgent() && !workloadExitReported()) {
    // Killed asleep without a wake: as a SIGKILL would have ended it.
    info.signal = SIGKILL;
    info.exitCode = 128 + SIGKILL;
  }
  // Also kills a standby of a sleeping VM.
  auto down = vmm_->shutdown(workloadRuns ? kPowerOffWait : asleep ? std::chrono::milliseconds(0) : timeout);
  if (!down.ok()) return down.error().wrap("stop " + taskId_);
  finishExit(std::move(info));
  return okResult();
}

void VmInstance::releaseOutput() {
  // Every caller has seen the VMM exit (or killed it), so its console output
  // is in the FIFO already and nothing writes after this.
  if (output_) output_->release();
}

Result<void> VmInstance::releaseResources() {
  Result<void> first;
  auto keep = [&](Result<void> r, const char* what) {
    if (r.ok()) return;
    spdlog::warn("instance {}: destroy: {}: {}", taskId_, what, r.error().describe());
    if (first.ok()) first = r.error().wrap(what);
  };
  InstanceRecord r = record();
  releaseOutput();
  if (deps_.kernel) keep(deps_.kernel->removeInstance(ifindex_, addressBe_), "bpf");
  keep(deps_.network->unplumb(r.network.tapName, lease_), "host network");
  if (tap_) keep(tap_->destroy(), "tap");
  keep(deps_.network->releaseAddress(r.network.address), "address");
  std::error_code ec;
  std::filesystem::remove_all(r.runDir, ec);
  if (ec) keep(Error{ErrorCode::kSystem, ec.value(), "remove " + r.runDir.string()}, "files");
  keep(removeTaskCgroup(cgroup_), "cgroup");
  return first;
}

Result<void> VmInstance::destroy() {
  if (state() != InstanceState::kExited) {
    // DestroyTask after a failed or skipped StopTask: no grace left.
    S2Z_TRY(stop(std::chrono::milliseconds(0), SIGKILL), "destroy");
  }
  OpLock op(*this);
  if (destroyed_) return okResult();
  auto released = releaseResources();
  if (!released.ok()) return released.error().wrap("destroy " + taskId_);
  destroyed_ = true;
  return okResult();
}

Result<void> VmInstance::signal(int signo) {
  OpLock op(*this);
  // A signal is for the workload, which must be awake to handle it.
  if (usesAgent() && state() == InstanceState::kSleeping) wakeNow(monotonicNowNs());
  {
    std::lock_guard lock(mutex_);
    auto allowed = lifecycle_.require("signal", {InstanceState::kRunning});
    if (!allowed.ok()) return allowed;
  }
  if (usesAgent()) return signalWorkload(signo);
  S2Z_TRY(vmm_->signal(signo), "signal " + taskId_);
  return okResult();
}

ResourceUsage VmInstance::usage() {
  std::lock_guard lock(mutex_);
  // A light sleeper's paused VMM still holds memory: reported as it is.
  InstanceState now = lifecycle_.state();
  bool lightAsleep = now == InstanceState::kSleeping && record_.sleepingTier == SleepTier::kLight;
  ResourceUsage usage;
  if (now == InstanceState::kRunning || lightAsleep) usage = sampler_.sample(record_.vmm.pid);
  if (!cgroup_.memory.empty() && now != InstanceState::kExited) {
    if (auto charged = cgroupMemoryCharge(cgroup_); charged.ok()) {
      usage.cgroupBytes = *charged;
      usage.cgroupMeasured = true;
    }
  }
  if (!cgroup_.cpu.empty() && now != InstanceState::kExited) {
    if (auto throttling = cgroupCpuThrottling(cgroup_); throttling.ok()) {
      usage.throttledPeriods = throttling->periods;
      usage.throttledNanoseconds = throttling->nanoseconds;
      usage.throttlingMeasured = true;
    }
  }
  return usage;
}

std::map<std::string, std::string> VmInstance::attributes() const {
  InstanceRecord r = record();
  std::map<std::string, std::string> a{
      {"state", instanceStateName(r.state)},
      {"address", r.network.address},
      {"tap", r.network.tapName},
      {"scale_to_zero", r.spec.scaleToZero ? "true" : "false"},
  };
  if (r.state == InstanceState::kSleeping) a["sleep_tier"] = sleepTierName(r.sleepingTier);
  if (r.vmm.pid != 0) a["vmm_pid"] = std::to_string(r.vmm.pid);
  if (!deps_.kernel) return a;
  if (auto c = deps_.kernel->counters(ifindex_); c.ok()) {
    a["packets"] = std::to_string(c->packets);
    a["bytes"] = std::to_string(c->bytes);
    a["health_packets"] = std::to_string(c->healthPackets);
  }
  if (auto s = deps_.kernel->state(ifindex_); s.ok()) {
    a["bpf_state"] = std::to_string(static_cast<uint32_t>(*s));
  }
  return a;
}

}  // namespace s2z::agent
