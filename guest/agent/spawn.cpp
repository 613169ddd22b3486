#include "guest/agent/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/ioctl.h>
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
  SpawnStdio stdio;
  int pipeFd;
};

[[noreturn]] void runChild(const ChildArgs& a) {
  if (::setsid() < 0) childFail(a.pipeFd, "setsid");
  // Outside the root: these paths are the agent's.
  if (!writeAll(a.cgroupProcs, "0")) childFail(a.pipeFd, "join the workload cgroup");
  if (!writeAll("/proc/self/oom_score_adj", "0")) childFail(a.pipeFd, "reset oom_score_adj");
  int in = a.stdio.in;
  if (in < 0) {
    in = ::open("/dev/null", O_RDONLY);
    if (in < 0) childFail(a.pipeFd, "open /dev/null");
  }
  if (a.stdio.controllingTty && ::ioctl(in, TIOCSCTTY, 0) != 0) childFail(a.pipeFd, "set the controlling terminal");
  // Duplicated upwards first, so no source is overwritten by an earlier dup2.
  int src[3] = {::fcntl(in, F_DUPFD_CLOEXEC, 3), ::fcntl(a.stdio.out, F_DUPFD_CLOEXEC, 3),
                ::fcntl(a.stdio.err, F_DUPFD_CLOEXEC, 3)};
  for (int i = 0; i < 3; ++i) {
    if (src[i] < 0 || ::dup2(src[i], i) < 0) childFail(a.pipeFd, "redirect stdio");
  }
  if (::chroot(a.rootDir) != 0) childFail(a.pipeFd, "chroot");
  if (::chdir(a.workingDir) != 0) childFail(a.pipeFd, "chdir to the working directory");
  const Credentials& c = *a.credentials;
  if (::setgroups(c.groups.size(), c.groups.data()) != 0) childFail(a.pipeFd, "setgroups");
  if (::setgid(c.gid) != 0) childFail(a.pipeFd, "setgid");
  if (::setuid(c.uid) != 0) childFail(a.pipeFd, "setuid");
  // The agent blocks the signals it reads through signalfd; a mask and
  // ignored signals survive execve, so the program gets clean defaults.
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

Result<pid_t> spawnInRoot(const std::string& rootDir, const LaunchPlan& plan, const SpawnStdio& stdio) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return systemError("spawn: pipe");
  UniqueFd readEnd(fds[0]), writeEnd(fds[1]);
  auto argv = cStrings(plan.argv);
  auto envp = cStrings(plan.env);
  const std::string cgroupProcs = std::string(kWorkloadCgroup) + "/cgroup.procs";
  ChildArgs args{cgroupProcs.c_str(), rootDir.c_str(), plan.workingDir.c_str(), plan.executable.c_str(),
                 argv.data(), envp.data(), &plan.credentials, stdio, writeEnd.get()};

  pid_t pid = ::fork();
  if (pid < 0) return systemError("spawn: fork");
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
    return makeError(ErrorCode::kInternal, "start \"" + plan.argv[0] + "\": " + failure);
  }
  return pid;
}

}  // namespace s2z::guest
