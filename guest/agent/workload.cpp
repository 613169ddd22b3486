#include "guest/agent/workload.h"

#include <signal.h>
#include <sys/wait.h>

#include "guest/agent/spawn.h"
#include "guest/agent/workload_cgroup.h"

namespace s2z::guest {

ExitStatus exitStatusOf(int waitStatus) {
  ExitStatus exit;
  if (WIFSIGNALED(waitStatus)) {
    exit.signal = WTERMSIG(waitStatus);
    exit.exitCode = 128 + exit.signal;
  } else {
    exit.exitCode = WEXITSTATUS(waitStatus);
  }
  return exit;
}

Result<pid_t> Workload::start(const std::string& rootDir, const LaunchPlan& plan) {
  if (state_ != WorkloadState::kNotStarted) {
    return makeError(ErrorCode::kFailedPrecondition, "workload already started");
  }
  uint64_t oomBefore = workloadOomKills();
  auto pid = spawnInRoot(rootDir, plan, SpawnStdio{-1, stdoutFd_, stderrFd_, false});
  if (!pid.ok()) return pid.error().wrap("workload");
  pid_ = *pid;
  state_ = WorkloadState::kRunning;
  oomKillsAtStart_ = oomBefore;
  return pid_;
}

Result<void> Workload::signal(int signo) {
  if (state_ == WorkloadState::kNotStarted) {
    return makeError(ErrorCode::kFailedPrecondition, "signal workload: not started");
  }
  if (state_ == WorkloadState::kExited) {
    return makeError(ErrorCode::kFailedPrecondition, "signal workload: already exited");
  }
  if (::kill(pid_, signo) != 0) return systemError("signal workload " + std::to_string(pid_));
  return okResult();
}

std::optional<ExitStatus> Workload::reapChildren(const std::function<void(pid_t, int)>& onOther) {
  std::optional<ExitStatus> result;
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;  // 0: children left but running; -1/ECHILD: none left
    if (state_ != WorkloadState::kRunning || pid != pid_) {
      if (onOther) onOther(pid, status);
      continue;
    }
    ExitStatus exit = exitStatusOf(status);
    exit.oomKilled = workloadOomKills() > oomKillsAtStart_;
    state_ = WorkloadState::kExited;
    exit_ = exit;
    result = exit;
  }
  return result;
}

}  // namespace s2z::guest
