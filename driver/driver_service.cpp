// Unary Driver RPCs. Streaming ones are in driver_service_streams.cpp.
#include "driver/driver_service.h"

#include <csignal>
#include <thread>

#include <fmt/format.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "driver/config_schema.h"
#include "driver/error_status.h"
#include "driver/exec_task.h"
#include "driver/signal_name.h"
#include "driver/task_lifecycle.h"

namespace s2z::driver {
namespace {

using google::protobuf::util::TimeUtil;

constexpr std::chrono::milliseconds kDefaultStopTimeout{5000};
constexpr std::chrono::milliseconds kForceDestroyTimeout{5000};

grpc::Status notFound(const std::string& what, const std::string& id) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, fmt::format("{}: task {} not found", what, id));
}

google::protobuf::Timestamp timestampOf(std::chrono::system_clock::time_point t) {
  return TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

// The exit if the task has exited, recording it on the handle.
std::optional<agent::ExitInfo> exitNow(TaskHandle& handle) {
  if (auto known = handle.exit()) return known;
  auto exit = handle.instance()->waitExit(std::chrono::milliseconds(0));
  if (exit) handle.recordExit(*exit);
  return exit;
}

}  // namespace

bool sleepUnlessCancelled(grpc::ServerContext* ctx, std::chrono::milliseconds d,
                          std::chrono::milliseconds slice) {
  auto deadline = std::chrono::steady_clock::now() + d;
  while (true) {
    if (ctx->IsCancelled()) return false;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(slice, deadline - now));
  }
}

grpc::Status DriverService::TaskConfigSchema(grpc::ServerContext*, const pb::TaskConfigSchemaRequest*,
                                             pb::TaskConfigSchemaResponse* response) {
  *response->mutable_spec() = taskConfigSpec();
  return grpc::Status::OK;
}

grpc::Status DriverService::Capabilities(grpc::ServerContext*, const pb::CapabilitiesRequest*,
                                         pb::CapabilitiesResponse* response) {
  auto* caps = response->mutable_capabilities();
  caps->set_send_signals(true);
  caps->set_exec(true);
  caps->set_fs_isolation(pb::DriverCapabilities::IMAGE);
  caps->add_network_isolation_modes(pb::NetworkIsolationSpec::HOST);
  // Nomad makes the alloc's netns and runs CNI; the VM joins it
  // (driver/group_network.h): no CreateNetwork of our own.
  caps->add_network_isolation_modes(pb::NetworkIsolationSpec::GROUP);
  caps->set_must_create_network(false);
  // Volumes that are block devices (driver/task_volumes.h).
  caps->set_mount_configs(pb::DriverCapabilities::ANY_MOUNTS);
  caps->set_disable_log_collection(false);
  return grpc::Status::OK;
}

grpc::Status DriverService::RecoverTask(grpc::ServerContext*, const pb::RecoverTaskRequest* request,
                                        pb::RecoverTaskResponse*) {
  return recoverTask(plugin_, request->handle());
}

grpc::Status DriverService::StartTask(grpc::ServerContext*, const pb::StartTaskRequest* request,
                                      pb::StartTaskResponse* response) {
  return startTask(plugin_, request->task(), response);
}

grpc::Status DriverService::WaitTask(grpc::ServerContext* ctx, const pb::WaitTaskRequest* request,
                                     pb::WaitTaskResponse* response) {
  const std::string& id = request->task_id();
  auto handle = plugin_.tasks().get(id);
  if (!handle) return notFound("wait task", id);
  // Always fill result: Nomad 1.6-1.10 dereference it even on errors.
  response->mutable_result();
  while (true) {
    auto exit = handle->exit();
    if (!exit) {
      exit = handle->instance()->waitExit(plugin_.options().cancelPollInterval);
      if (exit) handle->recordExit(*exit);
    }
    if (exit) {
      auto* result = response->mutable_result();
      result->set_exit_code(exit->exitCode);
      result->set_signal(exit->signal);
      result->set_oom_killed(exit->oomKilled);
      if (!exit->error.empty()) response->set_err(exit->error);
      return grpc::Status::OK;
    }
    if (ctx->IsCancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "wait task: cancelled by the client");
    }
  }
}

grpc::Status DriverService::StopTask(grpc::ServerContext*, const pb::StopTaskRequest* request,
                                     pb::StopTaskResponse*) {
  const std::string& id = request->task_id();
  auto handle = plugin_.tasks().get(id);
  if (!handle) return grpc::Status::OK;  // idempotent; see protocol doc §3.6
  std::chrono::milliseconds timeout = kDefaultStopTimeout;
  if (request->has_timeout()) {
    timeout = std::chrono::milliseconds(TimeUtil::DurationToMilliseconds(request->timeout()));
    if (timeout.count() < 0) timeout = std::chrono::milliseconds(0);
  }
  auto signo = signalNumber(request->signal());
  if (signo && *signo == SIGKILL) timeout = std::chrono::milliseconds(0);
  spdlog::info("stop task {}: timeout {} ms", id, timeout.count());
  auto stopped = handle->instance()->stop(timeout, signo.value_or(0));
  if (!stopped.ok()) return toStatus(stopped.error().wrap(fmt::format("stop task {}", id)));
  exitNow(*handle);
  return grpc::Status::OK;
}

grpc::Status DriverService::DestroyTask(grpc::ServerContext*, const pb::DestroyTaskRequest* request,
                                        pb::DestroyTaskResponse*) {
  const std::string& id = request->task_id();
  auto handle = plugin_.tasks().get(id);
  if (!handle) return grpc::Status::OK;
  if (!exitNow(*handle)) {
    if (!request->force()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          fmt::format("destroy task {}: still running; stop it first or force", id));
    }
    auto stopped = handle->instance()->stop(kForceDestroyTimeout, SIGKILL);
    if (!stopped.ok()) {
      spdlog::warn("destroy task {}: stop: {} (destroying anyway)", id, stopped.error().describe());
    }
    exitNow(*handle);
  }
  auto destroyed = handle->instance()->destroy();
  if (!destroyed.ok()) return toStatus(destroyed.error().wrap(fmt::format("destroy task {}", id)));
  if (auto* agent = plugin_.agentIfCreated()) agent->forget(id);
  plugin_.tasks().remove(id);
  spdlog::info("task {} destroyed", id);
  return grpc::Status::OK;
}

grpc::Status DriverService::InspectTask(grpc::ServerContext*, const pb::InspectTaskRequest* request,
                                        pb::InspectTaskResponse* response) {
  const std::string& id = request->task_id();
  auto handle = plugin_.tasks().get(id);
  if (!handle) return notFound("inspect task", id);
  auto exit = exitNow(*handle);

  auto* task = response->mutable_task();
  task->set_id(id);
  task->set_name(handle->config().name());
  task->set_state(exit ? pb::TaskState::EXITED : pb::TaskState::RUNNING);
  *task->mutable_started_at() = timestampOf(handle->startedAt());
  auto* result = task->mutable_result();
  if (exit) {
    auto completed = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(exit->completedAtUnixNs)));
    *task->mutable_completed_at() = timestampOf(completed);
    result->set_exit_code(exit->exitCode);
    result->set_signal(exit->signal);
  } else {
    task->mutable_completed_at();  // set (zero) so Go clients never see nil
  }

  auto& attrs = *response->mutable_driver()->mutable_attributes();
  for (const auto& [key, value] : handle->instance()->attributes()) attrs[key] = value;
  agent::InstanceRecord record = handle->instance()->record();
  attrs["state"] = agent::instanceStateName(handle->instance()->state());
  attrs["address"] = record.network.address;
  attrs["vm_name"] = record.spec.name;
  attrs["hypervisor"] = hypervisorConfigName(record.spec.hypervisor);
  attrs["scale_to_zero"] = record.spec.scaleToZero ? "true" : "false";
  attrs["sleeping"] = handle->instance()->state() == agent::InstanceState::kSleeping ? "true" : "false";
  *response->mutable_network_override() = toNetworkOverride(handle->network());
  return grpc::Status::OK;
}

grpc::Status DriverService::SignalTask(grpc::ServerContext*, const pb::SignalTaskRequest* request,
                                       pb::SignalTaskResponse*) {
  const std::string& id = request->task_id();
  auto signo = signalNumber(request->signal());
  if (!signo) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        fmt::format("signal task {}: unknown signal \"{}\"", id, request->signal()));
  }
  auto handle = plugin_.tasks().get(id);
  if (!handle) return notFound("signal task", id);
  auto sent = handle->instance()->signal(*signo);
  if (!sent.ok()) return toStatus(sent.error().wrap(fmt::format("signal task {}", id)));
  return grpc::Status::OK;
}

grpc::Status DriverService::ExecTask(grpc::ServerContext* ctx, const pb::ExecTaskRequest* request,
                                     pb::ExecTaskResponse* response) {
  return execTask(plugin_, ctx, *request, response);
}

grpc::ServerBidiReactor<pb::ExecTaskStreamingRequest, pb::ExecTaskStreamingResponse>*
DriverService::ExecTaskStreaming(grpc::CallbackServerContext* ctx) {
  return startExecStreaming(plugin_, ctx);
}

grpc::Status DriverService::CreateNetwork(grpc::ServerContext*, const pb::CreateNetworkRequest*,
                                          pb::CreateNetworkResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "create network: not supported (must_create_network is false)");
}

grpc::Status DriverService::DestroyNetwork(grpc::ServerContext*, const pb::DestroyNetworkRequest*,
                                           pb::DestroyNetworkResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "destroy network: not supported (must_create_network is false)");
}

}  // namespace s2z::driver
