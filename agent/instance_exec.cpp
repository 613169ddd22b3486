// VmInstance: commands exec'd beside the workload through the guest agent.
#include <spdlog/spdlog.h>

#include "agent/guest_exec_session.h"
#include "agent/vm_instance.h"

namespace s2z::agent {
namespace {

constexpr std::chrono::milliseconds kExecStartTimeout{10000};

}  // namespace

Result<std::unique_ptr<ExecSession>> VmInstance::exec(const ExecSpec& spec) {
  if (!usesAgent()) {
    return makeError(ErrorCode::kFailedPrecondition,
                     "exec needs the guest agent: this task boots its own init (set the task's `command` "
                     "to run it through the agent)");
  }
  if (spec.argv.empty()) return makeError(ErrorCode::kInvalidArgument, "exec: empty command");
  OpLock op(*this);
  if (state() == InstanceState::kSleeping) {
    if (!spec.wakeIfAsleep) return std::unique_ptr<ExecSession>();
    wakeNow(monotonicNowNs());
  }
  {
    std::lock_guard lock(mutex_);
    S2Z_TRY(lifecycle_.require("exec", {InstanceState::kRunning}), "");
  }
  auto [id, stream] = channel_->openExec();
  pb::Request request;
  auto* run = request.mutable_exec_process();
  run->set_exec_id(id);
  for (const auto& a : spec.argv) run->add_argv(a);
  run->set_tty(spec.tty);
  run->set_rows(spec.rows);
  run->set_columns(spec.columns);
  auto started = channel_->call(std::move(request), kExecStartTimeout);
  if (!started.ok()) {
    channel_->closeExec(id);
    return started.error().wrap("exec \"" + spec.argv[0] + "\"");
  }
  spdlog::info("instance {}: exec \"{}\"{} as guest pid {}", taskId_, spec.argv[0], spec.tty ? " (tty)" : "",
               started->exec_process().pid());
  {
    std::lock_guard lock(mutex_);
    activityBaselineNs_ = monotonicNowNs();
  }
  return std::unique_ptr<ExecSession>(std::make_unique<GuestExecSession>(channel_, id, stream, openExecs_));
}

}  // namespace s2z::agent
