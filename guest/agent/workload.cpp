#include "guest/agent/workload.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/unique_fd.h"
#include "guest/agent/workload_cgroup.h"

namespace s2z::guest {

namespace {

// In the child, between fork and exec: raw syscalls only, no allocation.
// Reports "<step>: <strerror>" through the pipe and exits.
[[noreturn]] void childFail(int pipeFd, const char* step) {
  int err = errno;
  char message[256];
  int n = std::snprintf(message, sizeof message, "%s: %s", step, std::strerror(err));
  if (n > 0) (void)::write(pipeFd, message, static_cast<size_t>(std::min(n, static_cast<int>(sizeof message) - 1)));
  ::_exit(127);
}

bool writeAll(const char* path, const char* value) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, value, std::strlen(value)) == static_cast<ssize_t>(std::strlen(value));
  ::close(fd);
  return ok;
}

struct ChildArgs {
  const char* cgroupProcs;
  const char* rootDir;
  const char* workingDir;
  const char* executable;
  char* const* argv;
  char* const* envp;
  const Credentials* credentials;
  int stdoutFd;
  int stderrFd;
  int pipeFd;
};

[[noreturn]] void runChild(const ChildArgs& a) {
  if (::setsid() < 0) childFail(a.pipeFd, "setsid");
  // Outside the root: these paths are the agent's.
  if (!writeAll(a.cgroupProcs, "0")) childFail(a.pipeFd, "join the workload cgroup");
  if (!writeAll("/proc/self/oom_score_adj", "0")) childFail(a.pipeFd, "reset oom_score_adj");
  int devNull = ::open("/dev/null", O_RDONLY);
  if (devNull < 0) childFail(a.pipeFd, "open /dev/null");
  if (::dup2(devNull, 0) < 0 || ::dup2(a.stdoutFd, 1) < 0 || ::dup2(a.stderrFd, 2) < 0) {
    childFail(a.pipeFd, "redirect stdio");
  }
  if (devNull > 2) ::close(devNull);
  if (::chroot(a.rootDir) != 0) childFail(a.pipeFd, "chroot");
  if (::chdir(a.workingDir) != 0) childFail(a.pipeFd, "chdir to the working directory");
  const Credentials& c = *a.credentials;
  if (::setgroups(c.groups.size(), c.groups.data()) != 0) childFail(a.pipeFd, "setgroups");
  if (::setgid(c.gid) != 0) childFail(a.pipeFd, "setgid");
  if (::setuid(c.uid) != 0) childFail(a.pipeFd, "setuid");
  // The agent blocks the signals it reads through signalfd; a mask and
  // ignored signals survive execve, so the workload gets clean defaults.
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(a.executable, a.argv, a.envp);
  childFail(a.pipeFd, "exec");
}

std::vector<char*> cStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<pid_t> Workload::start(const std::string& rootDir, const LaunchPlan& plan) {
  if (state_ != WorkloadState::kNotStarted) {
    return makeError(ErrorCode::kFailedPrecondition, "workload already started");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return systemError("start workload: pipe");
  UniqueFd readEnd(fds[0]), writeEnd(fds[1]);
  auto argv = cStrings(plan.argv);
  auto envp = cStrings(plan.env);
  const std::string cgroupProcs = std::string(kWorkloadCgroup) + "/cgroup.procs";
  ChildArgs args{cgroupProcs.c_str(), rootDir.c_str(), plan.workingDir.c_str(), plan.executable.c_str(), argv.data(), envp.data(),
                 &plan.credentials, stdoutFd_, stderrFd_, writeEnd.get()};
  uint64_t oomBefore = workloadOomKills();

  pid_t pid = ::fork();
  if (pid < 0) return systemError("start workload: fork");
  if (pid == 0) runChild(args);

  writeEnd.reset();
  // EOF without data: execve closed the pipe (CLOEXEC), the program runs.
  std::string failure;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(readEnd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    failure.append(buf, static_cast<size_t>(n));
  }
  if (!failure.empty()) {
    ::waitpid(pid, nullptr, 0);
    return makeError(ErrorCode::kInternal, "start workload \"" + plan.argv[0] + "\": " + failure);
  }
  state_ = WorkloadState::kRunning;
  pid_ = pid;
  oomKillsAtStart_ = oomBefore;
  return pid;
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

std::optional<ExitStatus> Workload::reapChildren() {
  std::optional<ExitStatus> result;
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;  // 0: children left but running; -1/ECHILD: none left
    if (state_ != WorkloadState::kRunning || pid != pid_) continue;
    ExitStatus exit;
    if (WIFSIGNALED(status)) {
      exit.signal = WTERMSIG(status);
      exit.exitCode = 128 + exit.signal;
    } else {
      exit.exitCode = WEXITSTATUS(status);
    }
    exit.oomKilled = workloadOomKills() > oomKillsAtStart_;
    state_ = WorkloadState::kExited;
    exit_ = exit;
    result = exit;
  }
  return result;
}

}  // namespace s2z::guest
