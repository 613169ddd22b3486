// The one workload process of the VM: started once, signalled, reaped.
//
//   state        how it gets there                      what is allowed
//   kNotStarted  boot; or a start that failed           start
//   kRunning     start: exec succeeded                  signal
//   kExited      its pid reaped (exit status recorded)  nothing (the agent powers off
//                                                       once the host has the exit)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "guest/agent/launch_plan.h"

namespace s2z::guest {

enum class WorkloadState { kNotStarted, kRunning, kExited };

struct ExitStatus {
  int exitCode = 0;  // the exit code, or 128 + signal when killed by one
  int signal = 0;    // 0: it exited
  bool oomKilled = false;
};

// A waitpid status as the host sees it (oomKilled is left false).
ExitStatus exitStatusOf(int waitStatus);

class Workload {
 public:
  // stdoutFd/stderrFd: the "s2z.stdout"/"s2z.stderr" ports (or /dev/null),
  // borrowed: they stay open for the VM's life.
  Workload(int stdoutFd, int stderrFd) : stdoutFd_(stdoutFd), stderrFd_(stderrFd) {}

  WorkloadState state() const { return state_; }
  pid_t pid() const { return pid_; }
  const std::optional<ExitStatus>& exitStatus() const { return exit_; }

  // Forks; the child joins the workload cgroup, chroots into rootDir and
  // execs the plan as its user with stdin /dev/null and stdout/stderr on the
  // ports. Pre: kNotStarted. Returns the pid once execve has succeeded; a
  // failure in the child (a CLOEXEC pipe carries it back) is the error, and
  // the state stays kNotStarted.
  Result<pid_t> start(const std::string& rootDir, const LaunchPlan& plan);

  // kill(pid, signo). Pre: kRunning, else kFailedPrecondition.
  Result<void> signal(int signo);

  // waitpid(-1, WNOHANG) until nothing is left to reap (PID 1 inherits every
  // orphan). Returns the workload's status when it was reaped in this call;
  // every other pid reaped goes to onOther with its wait status (exec'd
  // commands are the agent's children too).
  std::optional<ExitStatus> reapChildren(const std::function<void(pid_t, int)>& onOther = {});

 private:
  int stdoutFd_;
  int stderrFd_;
  WorkloadState state_ = WorkloadState::kNotStarted;
  pid_t pid_ = 0;
  uint64_t oomKillsAtStart_ = 0;
  std::optional<ExitStatus> exit_;
};

}  // namespace s2z::guest
