// VmInstance::start (staged boot with rollback) and VmInstance::recover.
#include <arpa/inet.h>
#include <sys/stat.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "agent/run_dir.h"
#include "agent/task_cgroup.h"
#include "agent/scratch_disk.h"
#include "common/failpoint.h"
#include "common/rollback_stack.h"
#include "agent/vm_instance.h"
#include "vmm/vmm_process.h"

namespace s2z::agent {
namespace {

uint32_t addressBe(const std::string& dotted) {
  in_addr a{};
  if (::inet_pton(AF_INET, dotted.c_str(), &a) != 1) return 0;
  return a.s_addr;
}

// A runDir left by an earlier attempt of the same task is reused (emptied);
// one that belongs to another task (a hash collision) is refused.
Result<void> prepareRunDir(const std::filesystem::path& runDir, const std::string& taskId) {
  std::error_code ec;
  if (std::filesystem::exists(runDir, ec)) {
    auto old = loadRecord(runDir);
    if (old.ok() && old->spec.taskId != taskId) {
      return makeError(ErrorCode::kAlreadyExists,
                       runDir.string() + " belongs to task " + old->spec.taskId);
    }
    std::filesystem::remove_all(runDir, ec);
    if (ec) return Error{ErrorCode::kSystem, ec.value(), "remove stale " + runDir.string()};
  }
  std::filesystem::create_directories(runDir.parent_path(), ec);
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "create " + runDir.parent_path().string()};
  // It holds the guest's whole memory, snapshots, sockets and the console:
  // nobody but the plugin's user may even look inside, from its first moment.
  if (::mkdir(runDir.c_str(), 0700) != 0) return systemError("create " + runDir.string());
  return okResult();
}

// The holder's argv: the configured command plus the task's name (for ps);
// it runs in the task's cgroups.
OutputHolderCommand holderCommand(const OutputHolderCommand& base, const InstanceSpec& spec,
                                  const TaskCgroup& cgroup) {
  OutputHolderCommand c = base;
  if (!c.argv.empty()) c.argv.push_back(spec.name);
  c.cgroups = cgroup.joined();
  return c;
}

// VMMs of this instance that no record names: a plugin that died between
// starting a VMM (a standby after "Sleeping", a restore) and persisting it
// left them running. They hold the guest RAM file and the task's console,
// and a second VMM for one task must never run; killed before anything is
// re-adopted. Only processes of the VMM binary naming the run dir count.
void killStrayVmms(const InstanceRecord& rec) {
  auto binary = vmm::resolveExecutable(rec.spec.binary);
  if (!binary.ok()) return;
  std::error_code ec;
  auto vmmExe = std::filesystem::canonical(*binary, ec);
  for (pid_t pid : vmm::processesMentioning(rec.runDir.string() + "/")) {
    if (pid == rec.vmm.pid) continue;
    auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    if (ec || exe != vmmExe) continue;
    auto start = vmm::processStartTime(pid);
    if (!start.ok()) continue;
    auto stray = vmm::VmmProcess::adopt({pid, *start});
    if (!stray.ok()) continue;
    spdlog::warn("recover {}: killing stray VMM pid {} that no record names", rec.spec.taskId, pid);
    (void)stray->kill();
  }
}

bool snapshotPresent(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_directory(dir, ec) && !std::filesystem::is_empty(dir, ec);
}

}  // namespace

Result<std::shared_ptr<VmInstance>> VmInstance::start(const AgentConfig& config,
                                                      const InstanceSpec& spec, EventSink events,
                                                      InstanceDeps deps) {
  const std::string where = "start " + spec.taskId;
  if (spec.taskId.empty()) return makeError(ErrorCode::kInvalidArgument, where + ": empty task id");
  if (!deps.network || !deps.vmmFactory) {
    return makeError(ErrorCode::kInternal, where + ": agent has no network or vmm factory");
  }
  // Declared before `undo` so undo steps run while they still exist.
  std::shared_ptr<VmInstance> instance;
  std::unique_ptr<TaskOutput> output;
  RollbackStack undo;
  NetworkBackend& net = *deps.network;

  InstanceRecord rec;
  rec.spec = spec;
  rec.runDir = tasksDir(config.stateDir) / instanceDirName(spec.name, spec.taskId);
  rec.snapshotDir = snapshotDirOf(rec.runDir);
  rec.startedAtUnixNs = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();

  // Stage: the task's cgroups, which every process of the task joins: its
  // VMMs and its log holder. Nomad's client made them at prestart; made here
  // only when missing. Their limits are set before anything joins (a
  // reserved cpuset takes no process until it has cores).
  TaskCgroup cgroup;
  if (!spec.cgroup.empty()) {
    auto resolved = resolveTaskCgroup(spec.cgroup, spec.cgroupScope, readCgroupMounts());
    if (resolved.ok()) {
      cgroup = std::move(*resolved);
      undo.push([made = cgroup] { (void)removeTaskCgroup(made); });  // before: a partial make is undone too
      S2Z_TRY(ensureTaskCgroup(cgroup), where);
      S2Z_TRY(applyTaskLimits(cgroup, spec.limits), where);
    } else if (resolved.error().code == ErrorCode::kUnimplemented) {
      spdlog::warn("{}: {}; the task's processes stay in the plugin's cgroup", where,
                   resolved.error().describe());
      rec.spec.cgroup.clear();
    } else {
      return resolved.error().wrap(where);
    }
  }

  // Stage: the task's log FIFOs, held until it exits (before the rest: a
  // client whose log collector is not reading yet makes the start fail at
  // once).
  OutputPaths paths{spec.stdoutPath, spec.stderrPath};
  if (!paths.empty()) {
    auto opened = TaskOutput::open(paths, holderCommand(deps.logHolder, spec, cgroup), deps.logReaderWait);
    if (!opened.ok()) return opened.error().wrap(where + ": logs");
    output = std::move(*opened);
    undo.push([out = output.get()] { out->release(); });
  }

  // Stage: prepare runDir.
  S2Z_TRY(prepareRunDir(rec.runDir, spec.taskId), where + ": prepare run dir");
  undo.push([dir = rec.runDir] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });

  // Stage: the guest agent's writable disk and the kernel console's file.
  std::optional<ConsoleLog> console;
  if (spec.workload) {
    S2Z_TRY(createScratchDisk(scratchDiskOf(rec.runDir), spec.scratchMib), where + ": scratch disk");
    auto opened = ConsoleLog::open(consoleLogOf(rec.runDir));
    if (!opened.ok()) return opened.error().wrap(where + ": console log");
    console = std::move(*opened);
  }

  // Stage: Nomad's group network, if any: the calls below act in the alloc's
  // netns and the address is eth0's (agent/group_network_backend.h).
  std::string stayAwake;  // why a task that asked to scale to zero cannot
  if (spec.group.enabled()) {
    auto joined = net.joinGroup(spec.taskId, rec.spec.group);
    if (!joined.ok()) return joined.error().wrap(where);
    if (!joined->healthChecksVisible) {
      if (spec.scaleToZero) stayAwake = joined->why;
      rec.spec.scaleToZero = false;  // recorded: a recovered task stays awake too
      deps.kernel = nullptr;  // no device of ours carries its frames: nothing to count
    }
  }

  // Stage: lease an address.
  auto lease = net.allocateAddress(spec.taskId);
  if (!lease.ok()) return lease.error().wrap(where + ": lease address");
  undo.push([&net, address = lease->address] { (void)net.releaseAddress(address); });
  rec.network.address = lease->address;
  rec.network.gateway = lease->gateway;
  rec.network.prefixLength = lease->prefixLength;
  rec.network.mac = net.macFor(lease->address);

  // Stage: the tap, whose fd we hold for the life of the instance.
  auto tap = net.createTap(tapNameFor(spec.taskId));
  if (!tap.ok()) return tap.error().wrap(where + ": tap");
  Tap* tapPtr = tap->get();
  undo.push([tapPtr] { (void)tapPtr->destroy(); });
  rec.network.tapName = tapPtr->name();
  rec.network.ifindex = tapPtr->ifindex();

  // Stage: host network (gateway, route, permanent neighbour).
  auto plumbed = net.plumb(rec.network.tapName, *lease, rec.network.mac);
  if (!plumbed.ok()) return plumbed.error().wrap(where + ": host network");
  undo.push([&net, name = rec.network.tapName, l = *lease] { (void)net.unplumb(name, l); });

  // Stage: BPF registration (counting classifier on the tap).
  if (deps.kernel) {
    uint32_t ifindex = rec.network.ifindex, addr = addressBe(rec.network.address);
    auto added = deps.kernel->addInstance(ifindex, addr);
    if (!added.ok()) return added.error().wrap(where + ": bpf");
    undo.push([k = deps.kernel, ifindex, addr] { (void)k->removeInstance(ifindex, addr); });
  }

  // Stage: launch the VMM and wait until it is up (not for the guest's server).
  auto vmm = deps.vmmFactory(spec.hypervisor);
  if (!vmm) return makeError(ErrorCode::kInternal, where + ": no VMM backend");
  instance.reset(new VmInstance(rec, std::move(events), std::move(deps), std::move(*tap),
                                *lease, std::move(vmm), std::move(output), std::move(console),
                                InstanceState::kBooting));
  {
    OpLock op(*instance);
    S2Z_TRY(instance->persist(), where + ": persist");
    // A VMM the task's memory limit killed says so.
    auto booted = instance->vmm_->boot(instance->vmConfig());
    if (!booted.ok()) return instance->withOomKill(booted.error()).wrap(where + ": boot");
    undo.push([vm = instance->vmm_.get()] { (void)vm->shutdown(std::chrono::milliseconds(0)); });
    // The start fails with the workload's error (no such command, user...).
    if (instance->usesAgent()) {
      auto started = instance->startWorkload();
      if (!started.ok()) return instance->withOomKill(started.error()).wrap(where);
    }
    S2Z_TRY(instance->transition(&Lifecycle::booted), where);
    instance->activityBaselineNs_ = monotonicNowNs();
    S2Z_TRY(instance->persist(), where + ": persist");
  }
  undo.commit();
  if (!stayAwake.empty()) instance->emit("Scale to zero off: " + stayAwake, {{"scale_to_zero", "off"}});
  return instance;
}

Result<std::shared_ptr<VmInstance>> VmInstance::recover(const InstanceRecord& handle,
                                                        EventSink events, InstanceDeps deps) {
  const std::string where = "recover " + handle.spec.taskId;
  if (!deps.network || !deps.vmmFactory) {
    return makeError(ErrorCode::kInternal, where + ": agent has no network or vmm factory");
  }
  // The handle is from StartTask; instance.json follows every transition.
  InstanceRecord rec = handle;
  failpoint("recover-task");
  if (auto disk = loadRecord(handle.runDir); disk.ok()) {
    if (disk->spec.taskId == handle.spec.taskId) {
      rec = *disk;
    } else {
      spdlog::warn("{}: {} names task {}; using the handle", where, handle.runDir.string(),
                   disk->spec.taskId);
    }
  } else if (disk.error().code != ErrorCode::kNotFound) {
    spdlog::warn("{}: {}; using the handle", where, disk.error().describe());
  }
  bool live = rec.state != InstanceState::kExited;
  killStrayVmms(rec);
  // A group-network task's tap and address live in the alloc's netns: join
  // it again before looking for them.
  if (live && rec.spec.group.enabled()) {
    auto joined = deps.network->joinGroup(rec.spec.taskId, rec.spec.group);
    if (!joined.ok()) return joined.error().wrap(where);
    if (!joined->healthChecksVisible) deps.kernel = nullptr;  // as at start
  }

  std::unique_ptr<Tap> tap;
  // A live VMM (or standby) holds the VM's queue: hold the same file again,
  // since the next sleep edge must detach exactly that queue. A new queue
  // beside it would take frames nobody reads. With no VMM, a new queue.
  Result<std::unique_ptr<Tap>> reopened =
      makeError(ErrorCode::kNotFound, "no VMM process recorded");
  if (rec.vmm.pid != 0) reopened = deps.network->adoptTap(rec.network.tapName, rec.vmm.pid);
  if (!reopened.ok() && reopened.error().code == ErrorCode::kNotFound) {
    reopened = deps.network->reopenTap(rec.network.tapName);
  }
  if (reopened.ok()) {
    tap = std::move(*reopened);
  } else if (live) {
    return reopened.error().wrap(where + ": tap");
  }
  auto lease = deps.network->reclaimAddress(rec.network.address, rec.spec.taskId);
  if (!lease.ok()) return lease.error().wrap(where + ": address");
  if (deps.kernel && tap) {
    // Idempotent: an existing registration keeps its state and counters.
    auto added = deps.kernel->addInstance(tap->ifindex(), addressBe(rec.network.address));
    if (!added.ok()) return added.error().wrap(where + ": bpf");
  }
  auto vmm = deps.vmmFactory(rec.spec.hypervisor);
  if (!vmm) return makeError(ErrorCode::kInternal, where + ": no VMM backend");
  // The log FIFOs' write ends, from the holder that kept them while no plugin
  // ran; an exited task's holder is ended below (finishExit or here).
  std::unique_ptr<TaskOutput> output;
  std::string outputLost;
  OutputPaths paths{rec.spec.stdoutPath, rec.spec.stderrPath};
  if (!paths.empty()) {
    auto recovered = TaskOutput::recover(paths, rec.logHolder,
                                         holderCommand(deps.logHolder, rec.spec,
                                                       taskCgroupOnThisHost(rec.spec.cgroup, rec.spec.cgroupScope)));
    if (!recovered.ok()) return recovered.error().wrap(where + ": logs");
    output = std::move(*recovered);
    outputLost = output->lost();
    if (!live) output->release();
  }
  std::optional<ConsoleLog> console;
  if (rec.spec.workload && live) {
    auto opened = ConsoleLog::open(consoleLogOf(rec.runDir));
    if (!opened.ok()) return opened.error().wrap(where + ": console log");
    console = std::move(*opened);
  }
  InstanceState recorded = rec.state;
  std::shared_ptr<VmInstance> instance(new VmInstance(rec, std::move(events), std::move(deps),
                                                      std::move(tap), *lease, std::move(vmm),
                                                      std::move(output), std::move(console),
                                                      recorded));
  if (live && !outputLost.empty()) {
    instance->emit("Task output lost: " + outputLost +
                   " (the log FIFO holder was gone and the client stopped reading)");
  }
  switch (recorded) {
    case InstanceState::kExited: {
      std::lock_guard lock(instance->mutex_);
      instance->exit_ = ExitInfo{};
      break;
    }
    case InstanceState::kSleeping:
      S2Z_TRY(instance->recoverSleeping(), where);
      break;
    default:
      S2Z_TRY(instance->recoverRunning(recorded), where);
      break;
  }
  return instance;
}

Result<void> VmInstance::recoverRunning(InstanceState recorded) {
  OpLock op(*this);
  InstanceRecord r = record();
  Result<void> adopted = makeError(ErrorCode::kNotFound, "no VM process recorded");
  // Recorded Waking with a standby: the plugin died restoring into it (a
  // restore is recorded only once done), so the restore is finished now.
  const bool restoreCut = recorded == InstanceState::kWaking && r.standby;
  if (r.vmm.pid != 0) adopted = vmm_->reattach(vmConfig(), r.vmm, /*standby=*/restoreCut);
  if (adopted.ok() && restoreCut) {
    wakeNow(monotonicNowNs());
    return okResult();
  }
  if (adopted.ok()) {
    if (recorded == InstanceState::kStopping) {
      // The plugin died mid-stop: finish it.
      (void)vmm_->shutdown(std::chrono::milliseconds(0));
      finishExit(usesAgent() ? exitOfAgentTask() : ExitInfo{});
      return okResult();
    }
    if (recorded == InstanceState::kSnapshotting) {
      // The plugin died mid-sleep with the VMM alive: its guest may be paused.
      // Resuming keeps it serving; the idle monitor will put it to sleep again.
      S2Z_TRY(vmm_->resume(), "adopt");
      emit("Sleep interrupted by a plugin restart; the VM runs on");
    }
    if (usesAgent()) {
      // A new session (after the resume: a paused guest cannot answer): the
      // guest sends again whatever we had not acknowledged (a workload exit,
      // responses); requests of the dead plugin are moot.
      if (auto hello = channel_->connect(kPowerOffWait); !hello.ok()) {
        spdlog::warn("instance {}: guest agent: {}", taskId_, hello.error().describe());
      }
    }
    Result<void> (Lifecycle::*step)() = nullptr;
    if (recorded == InstanceState::kBooting) step = &Lifecycle::booted;
    if (recorded == InstanceState::kSnapshotting) step = &Lifecycle::sleepFailed;
    if (recorded == InstanceState::kWaking) step = &Lifecycle::woke;
    if (step) S2Z_TRY(transition(step), "adopt");
    if (deps_.kernel) (void)deps_.kernel->setState(ifindex_, bpf::InstanceState::kRunning);
    {
      std::lock_guard lock(mutex_);
      activityBaselineNs_ = monotonicNowNs();
    }
    return persist();
  }
  if (adopted.error().code != ErrorCode::kNotFound) return adopted.error();
  if (recorded == InstanceState::kStopping || r.workloadExit.reported) {
    // Gone after its workload's end was recorded: that is the task's exit.
    finishExit(usesAgent() ? exitOfAgentTask() : ExitInfo{});
    return okResult();
  }
  // The plugin died during a sleep or a wake with the VMM gone: the VM is
  // asleep if its snapshot is whole; wake it (its BPF state may say WAKING
  // already). Mid-sleep only the snapshot of that very sleep will do (the
  // next generation): the previous one's device state is older than the RAM.
  // Mid-wake the restore checks the snapshot itself (and refuses it if the
  // guest ran on its RAM already).
  bool asleep = false;
  if (recorded == InstanceState::kSnapshotting) {
    vmm::SnapshotStamp next{taskId_, r.snapshotGeneration + 1};
    auto whole = vmm::verifySnapshot(r.snapshotDir, next);
    if (whole.ok()) {
      std::lock_guard lock(mutex_);
      record_.snapshotGeneration = next.generation;
      // Asleep deep, whatever tier it slept in before: a light sleep that
      // was going deeper left a paused VMM only until this snapshot was
      // durable, and waking it by resume would find none (and cold boot).
      record_.sleepingTier = SleepTier::kDeep;
      asleep = true;
    } else {
      spdlog::warn("instance {}: no whole snapshot of the interrupted sleep: {}", taskId_,
                   whole.error().describe());
    }
  } else if (recorded == InstanceState::kWaking) {
    asleep = snapshotPresent(r.snapshotDir);
  }
  if (asleep) {
    if (recorded == InstanceState::kSnapshotting) S2Z_TRY(transition(&Lifecycle::slept), "adopt");
    wakeNow(monotonicNowNs());
    return okResult();
  }
  std::string gone = "VM process " + std::to_string(r.vmm.pid) + " of " + taskId_ + " is gone";
  auto released = releaseResources();
  destroyed_ = true;
  if (!released.ok()) gone += " (cleanup: " + released.error().describe() + ")";
  return makeError(ErrorCode::kNotFound, gone);
}

Result<void> VmInstance::recoverSleeping() {
  OpLock op(*this);
  InstanceRecord r = record();
  // The light sleep's clock starts again: the old plugin's monotonic time is gone.
  sleptAtNs_ = monotonicNowNs();
  const bool light = r.sleepingTier == SleepTier::kLight;
  if (light) {
    // The paused VMM is the guest: without it there is nothing to wake.
    Result<void> adopted = makeError(ErrorCode::kNotFound, "no VM process recorded");
    if (r.vmm.pid != 0) adopted = vmm_->reattach(vmConfig(), r.vmm, /*standby=*/false);
    if (!adopted.ok()) {
      if (adopted.error().code != ErrorCode::kNotFound) return adopted.error();
      std::string gone = "VM process " + std::to_string(r.vmm.pid) + " of " + taskId_ +
                         " (sleeping lightly) is gone";
      auto released = releaseResources();
      destroyed_ = true;
      if (!released.ok()) gone += " (cleanup: " + released.error().describe() + ")";
      return makeError(ErrorCode::kNotFound, gone);
    }
  } else if (r.standby && r.vmm.pid != 0) {
    auto adopted = vmm_->reattach(vmConfig(), r.vmm, /*standby=*/true);
    if (!adopted.ok()) {
      spdlog::info("instance {}: standby is gone ({})", taskId_, adopted.error().describe());
    } else if (!deps_.standbys || !deps_.standbys->claim(taskId_)) {
      dropStandby("standby_vmms has no place for it");
    }
  }
  if (!deps_.kernel) {
    // Nothing can wake it by packet any more: wake it now.
    wakeNow(monotonicNowNs());
    return okResult();
  }
  auto bpfState = deps_.kernel->state(ifindex_);
  if (bpfState.ok() && *bpfState == bpf::InstanceState::kWaking) {
    spdlog::info("instance {}: a packet arrived while no plugin ran; waking", taskId_);
    wakeNow(monotonicNowNs());
    return okResult();
  }
  if (!bpfState.ok() || *bpfState != bpf::InstanceState::kSleeping) {
    // Fresh maps (replaced layout) say RUNNING: re-arm the wake.
    S2Z_TRY(deps_.kernel->setState(ifindex_, bpf::InstanceState::kSleeping), "re-arm wake");
  }
  if (!light && !vmm_->process()) startStandbyIfAllowed();
  return persist();
}

}  // namespace s2z::agent
