// ExecTask: one command, its output and exit code (script checks).
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <csignal>

#include <fmt/format.h>

#include "driver/error_status.h"
#include "driver/exec_task.h"

namespace s2z::driver {
namespace {

using Clock = std::chrono::steady_clock;

void appendCapped(std::string& to, const std::string& data) {
  if (to.size() < kMaxExecOutputBytes) to.append(data, 0, kMaxExecOutputBytes - to.size());
}

}  // namespace

grpc::Status execTask(Plugin& plugin, grpc::ServerContext* ctx, const pb::ExecTaskRequest& request,
                      pb::ExecTaskResponse* response) {
  const std::string& id = request.task_id();
  auto handle = plugin.tasks().get(id);
  if (!handle) return grpc::Status(grpc::StatusCode::NOT_FOUND, fmt::format("exec task: task {} not found", id));
  if (request.command().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, fmt::format("exec task {}: empty command", id));
  }
  agent::ExecSpec spec;
  spec.argv.assign(request.command().begin(), request.command().end());
  auto record = handle->instance()->record();
  spec.wakeIfAsleep = record.spec.workload && record.spec.workload->scriptChecksWake;
  auto session = handle->instance()->exec(spec);
  if (!session.ok()) return toStatus(session.error().wrap(fmt::format("exec task {}", id)));
  if (!*session) {
    // Asleep: the check passes unrun, as HTTP and TCP checks do meanwhile.
    spdlog::debug("exec task {}: asleep; \"{}\" answered as passing without running it", id, spec.argv[0]);
    response->mutable_result()->set_exit_code(0);
    return grpc::Status::OK;
  }
  agent::ExecSession& exec = **session;
  (void)exec.closeStdin();  // a check reads no input

  std::optional<Clock::time_point> deadline;
  int64_t timeoutMs = 0;
  if (request.has_timeout()) {
    timeoutMs = google::protobuf::util::TimeUtil::DurationToMilliseconds(request.timeout());
    if (timeoutMs > 0) deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  }
  const auto slice = plugin.options().cancelPollInterval;
  for (;;) {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "exec task: cancelled");
    if (deadline && Clock::now() >= *deadline) {
      (void)exec.signal(SIGKILL);
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          fmt::format("exec task {}: \"{}\" timed out after {} ms", id, spec.argv[0], timeoutMs));
    }
    auto wait = slice;
    if (deadline) {
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()) +
                                std::chrono::milliseconds(1));
    }
    auto event = exec.next(wait);
    if (!event.ok()) {
      if (event.error().code == ErrorCode::kTimeout) continue;
      return toStatus(event.error().wrap(fmt::format("exec task {}", id)));
    }
    switch (event->kind) {
      case agent::ExecEvent::Kind::kStdout:
        appendCapped(*response->mutable_stdout(), event->data);
        break;
      case agent::ExecEvent::Kind::kStderr:
        appendCapped(*response->mutable_stderr(), event->data);
        break;
      case agent::ExecEvent::Kind::kExited:
        response->mutable_result()->set_exit_code(event->exitCode);
        response->mutable_result()->set_signal(event->signal);
        return grpc::Status::OK;
    }
  }
}

}  // namespace s2z::driver
