// NomadClient: the task runner's side (StartTask ... DestroyTask, RecoverTask)
// and the per-task background calls (WaitTask, TaskStats).
#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "standin/nomad_client.h"
#include "standin/nomad_client_internal.h"
#include "standin/plugin_instance.h"
#include "standin/proto_records.h"
#include "standin/recorder.h"
#include "standin/rpc_error.h"
#include "standin/task_config_builder.h"

namespace s2z::standin {

namespace {

// StartTask boots a VM; under TCG that takes seconds, give it room.
constexpr auto kStartTimeout = std::chrono::minutes(3);

StartedTask toStartedTask(const drivers::TaskConfig& cfg, const drivers::StartTaskResponse& resp,
                          const AllocLayout& layout) {
  StartedTask t;
  t.id = cfg.id();
  t.allocId = cfg.alloc_id();
  t.name = cfg.name();
  t.handle = resp.handle().SerializeAsString();
  t.handleVersion = resp.handle().version();
  t.handleConfigMatches = resp.handle().config().id() == cfg.id();
  t.driverState = resp.handle().driver_state();
  t.hasNetworkOverride = resp.has_network_override();
  t.networkAddr = resp.network_override().addr();
  for (const auto& [k, v] : resp.network_override().port_map()) t.portMap[k] = v;
  t.autoAdvertise = resp.network_override().auto_advertise();
  t.allocDir = layout.allocDir;
  t.taskDir = layout.taskDir;
  t.stdoutPath = cfg.stdout_path();
  t.stderrPath = cfg.stderr_path();
  t.reservedCores = cfg.resources().linux_resources().cpuset_cpus();
  return t;
}

// The client's node: made once per process, as the client's start does.
const NodeInfo& thisNode() {
  static const NodeInfo node = NodeInfo::detect();
  return node;
}

}  // namespace

double NomadClient::nodeComputeMhz() { return thisNode().totalComputeMhz; }

Result<StartedTask> NomadClient::startTask(const TaskFile& task) {
  drivers::TaskConfigSchemaRequest schemaReq;
  drivers::TaskConfigSchemaResponse schemaResp;
  {
    grpc::ClientContext ctx;
    withDeadline(ctx, kUnaryTimeout);
    grpc::Status st = instance_->driver().TaskConfigSchema(&ctx, schemaReq, &schemaResp);
    if (!st.ok()) return rpcError("TaskConfigSchema", st);
  }
  if (!schemaResp.has_spec()) {
    return makeError(ErrorCode::kInvalidArgument, "TaskConfigSchema: plugin returned a nil spec");
  }
  auto caps = capabilities();
  if (!caps.ok()) return caps.error();
  // The client refuses group networking the driver does not declare (§3.12).
  if (task.networkMode == "group" &&
      std::find(caps->networkIsolationModes.begin(), caps->networkIsolationModes.end(), "GROUP") ==
          caps->networkIsolationModes.end()) {
    return makeError(ErrorCode::kFailedPrecondition,
                     "task " + task.name + " does not support \"bridge\" networking mode");
  }

  // The volume hook (client/allocrunner/taskrunner/volume_hook.go) refuses
  // mounts for a driver that takes none, in these words.
  if (!task.mounts.empty() && caps->mountConfigs == "NO_MOUNTS") {
    return makeError(ErrorCode::kFailedPrecondition,
                     "task driver \"" + task.driver + "\" for \"" + task.name + "\" does not support host volumes");
  }

  std::string allocId = randomUuid();
  auto layout = prepareAllocDir(options_.dataDir, allocId, task.name);
  if (!layout.ok()) return layout.error();
  // The template hook runs in prestart, before the driver is asked to start.
  for (const auto& t : task.templates) {
    S2Z_TRY(renderTemplate(layout->taskDir, t.destination, t.data, t.perms), "template");
  }
  auto record = std::make_shared<TaskRecord>();
  const bool collect = !caps->disableLogCollection && options_.collectLogs;
  if (collect && options_.logCollectorDelay.count() == 0) {
    auto logs = LogCollector::start(layout->stdoutFifo, layout->stderrFifo, layout->logsDir, task.name);
    if (!logs.ok()) return logs.error().wrap("start log collector");
    record->logs = std::move(*logs);
  }
  const NodeInfo& node = thisNode();
  auto cfg = buildTaskConfig(task, schemaResp.spec(), allocId, *layout, node);
  if (!cfg.ok()) return cfg.error();
  const std::string& cores = cfg->resources().linux_resources().cpuset_cpus();
  node.cgroups.setUpTask(allocId, task.name, cores);  // cpuparts (alloc prerun), then the wrangler hook (prestart)

  drivers::StartTaskRequest req;
  *req.mutable_task() = *cfg;
  drivers::StartTaskResponse resp;
  if (collect && options_.logCollectorDelay.count() > 0) {
    // A raw pointer: ~TaskRecord joins this thread, so the record outlives it.
    record->lateLogs = std::thread([this, rec = record.get(), l = *layout, name = task.name,
                                    delay = options_.logCollectorDelay] {
      std::this_thread::sleep_for(delay);
      auto logs = LogCollector::start(l.stdoutFifo, l.stderrFifo, l.logsDir, name);
      if (!logs.ok()) {
        spdlog::warn("standin: late log collector: {}", logs.error().describe());
        return;
      }
      std::lock_guard lock(tasksMu_);
      rec->logs = std::move(*logs);
    });
  }
  grpc::ClientContext ctx;
  withDeadline(ctx, kStartTimeout);
  grpc::Status st = instance_->driver().StartTask(&ctx, req, &resp);
  if (!st.ok()) {
    Error err = rpcError("StartTask", st);
    auto recoverable = recoverableDetail(st);
    err.message += recoverable ? (*recoverable ? " [recoverable]" : " [unrecoverable]") : "";
    node.cgroups.tearDownTask(allocId, task.name, cores);  // no restart here: the runner's stop hooks run
    return err;
  }
  record->started = toStartedTask(*cfg, resp, *layout);
  record->taskDir = layout->taskDir;
  record->templates = task.templates;
  StartedTask started = record->started;
  {
    std::lock_guard lock(tasksMu_);
    tasks_[started.id] = record;
  }
  spdlog::info("standin: started task {} addr={}", started.id, started.networkAddr);
  startTaskBackground(started.id);
  return started;
}

void NomadClient::startTaskBackground(const std::string& taskId) {
  std::shared_ptr<TaskRecord> record;
  {
    std::lock_guard lock(tasksMu_);
    record = tasks_[taskId];
  }
  PluginInstance* inst = instance_.get();
  Recorder* recorder = recorder_.get();
  inst->background().spawn([inst, recorder, taskId] {
    auto ctx = inst->background().newContext();
    if (!ctx) return;
    drivers::WaitTaskRequest req;
    req.set_task_id(taskId);
    drivers::WaitTaskResponse resp;
    grpc::Status st = inst->driver().WaitTask(ctx.get(), req, &resp);
    if (st.ok()) {
      recorder->setExit(taskId, toRecord(resp));
      return;
    }
    // Protocol doc §3.6 (Nomad: plugins/base/grpcutils HandleReqCtxGrpcErr): on UNAVAILABLE or
    // CANCELLED it waits up to 3 s for the plugin's exit to be seen, and a
    // plugin that died is ErrPluginShutdown, not the task's end. A SIGKILLed
    // plugin's sockets close a moment before it can be reaped.
    bool transport = st.error_code() == grpc::StatusCode::UNAVAILABLE ||
                     st.error_code() == grpc::StatusCode::CANCELLED;
    for (int i = 0; transport && i < 300 && inst->process().running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!inst->background().stopping() && inst->process().running()) {
      // From a live plugin any WaitTask error ends the task (§3.6).
      ExitResult failed;
      failed.err = "WaitTask: " + statusText(st);
      recorder->setExit(taskId, failed);
    }
  });
  auto interval = options_.statsInterval;
  inst->background().spawn([inst, recorder, taskId, record, interval] {
    for (;;) {
      auto ctx = inst->background().newContext();
      if (!ctx) return;
      drivers::TaskStatsRequest req;
      req.set_task_id(taskId);
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(interval);
      req.mutable_collection_interval()->set_seconds(secs.count());
      req.mutable_collection_interval()->set_nanos(
          static_cast<int32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(interval - secs).count()));
      auto reader = inst->driver().TaskStats(ctx.get(), req);
      drivers::TaskStatsResponse resp;
      while (reader->Read(&resp)) recorder->addStats(toRecord(resp, taskId));
      (void)reader->Finish();
      recorder->noteStreamEnd("stats");
      // The client re-opens the stream after one interval while the task runs.
      if (inst->background().stopping() || record->destroyed || recorder->exit(taskId) ||
          !inst->process().running()) {
        return;
      }
      if (!inst->background().sleepFor(interval)) return;
    }
  });
}

Result<ExitResult> NomadClient::waitTask(const std::string& taskId, std::chrono::milliseconds timeout) {
  drivers::WaitTaskRequest req;
  req.set_task_id(taskId);
  drivers::WaitTaskResponse resp;
  grpc::ClientContext ctx;
  withDeadline(ctx, timeout);
  grpc::Status st = instance_->driver().WaitTask(&ctx, req, &resp);
  if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return makeError(ErrorCode::kTimeout, "WaitTask: task still running after " +
                                              std::to_string(timeout.count()) + " ms");
  }
  if (!st.ok()) return rpcError("WaitTask", st);
  return toRecord(resp);
}

Result<void> NomadClient::stopTask(const std::string& taskId, std::chrono::milliseconds timeout,
                                   const std::string& signal) {
  drivers::StopTaskRequest req;
  req.set_task_id(taskId);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  req.mutable_timeout()->set_seconds(secs.count());
  req.mutable_timeout()->set_nanos(
      static_cast<int32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout - secs).count()));
  req.set_signal(signal);
  drivers::StopTaskResponse resp;
  grpc::ClientContext ctx;
  withDeadline(ctx, timeout + std::chrono::seconds(30));
  grpc::Status st = instance_->driver().StopTask(&ctx, req, &resp);
  if (!st.ok()) return rpcError("StopTask", st);
  return okResult();
}

Result<void> NomadClient::destroyTask(const std::string& taskId, bool force) {
  drivers::DestroyTaskRequest req;
  req.set_task_id(taskId);
  req.set_force(force);
  drivers::DestroyTaskResponse resp;
  grpc::ClientContext ctx;
  withDeadline(ctx, std::chrono::minutes(1));
  grpc::Status st = instance_->driver().DestroyTask(&ctx, req, &resp);
  if (!st.ok()) return rpcError("DestroyTask", st);
  std::shared_ptr<TaskRecord> record;
  {
    std::lock_guard lock(tasksMu_);
    auto it = tasks_.find(taskId);
    if (it != tasks_.end()) record = it->second;
  }
  if (!record) return okResult();
  record->destroyed = true;
  // The task runner's stop hooks run after its DestroyTask: the wrangler
  // kills what is left in the task's cgroups and removes them.
  thisNode().cgroups.tearDownTask(record->started.allocId, record->started.name, record->started.reservedCores);
  return okResult();
}

Result<void> NomadClient::recoverTask(const StartedTask& task) {
  drivers::RecoverTaskRequest req;
  if (!req.mutable_handle()->ParseFromString(task.handle)) {
    return makeError(ErrorCode::kInvalidArgument, "RecoverTask: stored handle does not parse");
  }
  // The client leaves task_id empty; drivers must use handle.config.id (§3.7).
  std::string taskId = req.handle().config().id();
  drivers::RecoverTaskResponse resp;
  grpc::ClientContext ctx;
  withDeadline(ctx, std::chrono::minutes(1));
  grpc::Status st = instance_->driver().RecoverTask(&ctx, req, &resp);
  if (!st.ok()) return rpcError("RecoverTask", st);
  {
    std::lock_guard lock(tasksMu_);
    auto& record = tasks_[taskId];
    if (!record) {
      // Recovering a task another client object started (agent restart):
      // reattach to its log FIFOs like logmon does.
      record = std::make_shared<TaskRecord>();
      record->started = task;
      std::string logsDir = task.allocDir + "/alloc/logs";
      auto logs = LogCollector::start(task.stdoutPath, task.stderrPath, logsDir, task.name);
      if (logs.ok()) record->logs = std::move(*logs);
    }
  }
  startTaskBackground(taskId);
  return okResult();
}

Result<void> NomadClient::rerenderTemplate(const std::string& taskId, const std::string& destination,
                                           const std::string& data) {
  std::string taskDir;
  std::optional<TemplateSpec> spec;
  {
    std::lock_guard lock(tasksMu_);
    auto it = tasks_.find(taskId);
    if (it == tasks_.end()) return makeError(ErrorCode::kNotFound, "no task " + taskId);
    taskDir = it->second->taskDir;
    for (const auto& t : it->second->templates) {
      if (t.destination == destination) spec = t;
    }
  }
  if (!spec) return makeError(ErrorCode::kNotFound, "task has no template " + destination);
  S2Z_TRY(renderTemplate(taskDir, destination, data, spec->perms), "template");
  if (spec->changeMode == "signal") return signalTask(taskId, spec->changeSignal);
  if (spec->changeMode == "restart") {
    return makeError(ErrorCode::kUnimplemented,
                     "change_mode restart (a task restart) is not modelled by the stand-in");
  }
  return okResult();
}

Result<void> NomadClient::signalTask(const std::string& taskId, const std::string& signal) {
  drivers::SignalTaskRequest req;
  req.set_task_id(taskId);
  req.set_signal(signal);
  drivers::SignalTaskResponse resp;
  grpc::ClientContext ctx;
  withDeadline(ctx, kUnaryTimeout);
  grpc::Status st = instance_->driver().SignalTask(&ctx, req, &resp);
  if (!st.ok()) return rpcError("SignalTask", st);
  return okResult();
}

Result<ExecTaskOutcome> NomadClient::execTask(const std::string& taskId, const std::vector<std::string>& command,
                                              std::chrono::milliseconds timeout) {
  return runExecTask(*instance_, taskId, command, timeout);
}

Result<std::unique_ptr<ExecStreamCall>> NomadClient::execStreaming(const std::string& taskId,
                                                                   const std::vector<std::string>& command,
                                                                   bool tty) {
  return startExecStream(*instance_, taskId, command, tty);
}

std::string NomadClient::taskStdout(const std::string& taskId) const {
  std::lock_guard lock(tasksMu_);
  auto it = tasks_.find(taskId);
  return it != tasks_.end() && it->second->logs ? it->second->logs->stdoutText() : "";
}

bool NomadClient::taskStdoutClosed(const std::string& taskId) const {
  std::lock_guard lock(tasksMu_);
  auto it = tasks_.find(taskId);
  return it != tasks_.end() && it->second->logs && it->second->logs->stdoutState().eof;
}

std::string NomadClient::taskStderr(const std::string& taskId) const {
  std::lock_guard lock(tasksMu_);
  auto it = tasks_.find(taskId);
  return it != tasks_.end() && it->second->logs ? it->second->logs->stderrText() : "";
}

}  // namespace s2z::standin
