// One hypervisor process: started by us (fork/exec in its own session) or adopted
// from an earlier plugin process by identity (pid + start time). Shared by every
// backend. Destroying a VmmProcess never kills the VM: VMs outlive the plugin,
// so killing is always an explicit call.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/vmm.h"

namespace s2z::vmm {

// A descriptor the child gets at a chosen number (e.g. the tap fd as fd 4).
struct InheritedFd {
  int fd = -1;        // in this process; borrowed
  int childFd = -1;   // number in the child; must be >= 3
};

struct SpawnOptions {
  std::vector<std::string> argv;     // argv[0]: executable, a path or a name found in $PATH
  std::vector<InheritedFd> fds;      // every other fd is closed in the child
  std::filesystem::path logPath;     // stdout+stderr, appended; empty: /dev/null
  int outputFd = -1;                 // if set, stdout+stderr go here instead (borrowed)
  std::filesystem::path workDir;     // cwd of the child; empty: "/"
  // The child's umask. Owner-only by default: a VMM creates its sockets (QMP,
  // guest channels) and, for some backends, snapshot and memory files itself,
  // and they hold or reach the guest's memory.
  mode_t umask = 077;
  // Cgroup directories the child joins before exec (Nomad's cgroups for the
  // task: a v2 scope, or one directory per v1 hierarchy), so its memory and
  // CPU are charged and limited there; empty: the plugin's own.
  std::vector<std::filesystem::path> cgroups;
};

// A bare name ("qemu-system-x86_64") is looked up in $PATH like a shell would;
// a path with a slash is returned as is. kNotFound when nothing executable is found.
Result<std::filesystem::path> resolveExecutable(const std::filesystem::path& name);

// Pids of live processes whose command line mentions `needle` (e.g. a VM's
// run dir, which every VMM of that VM names in its arguments). Zombies have an
// empty command line and are not listed.
std::vector<pid_t> processesMentioning(const std::string& needle);

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot).
// kNotFound when the process does not exist.
Result<uint64_t> processStartTime(pid_t pid);

class VmmProcess {
 public:
  VmmProcess() = default;
  VmmProcess(VmmProcess&&) noexcept = default;
  VmmProcess& operator=(VmmProcess&&) noexcept = default;

  // Starts argv in a new session with stdin /dev/null, stdout/stderr to the log,
  // the listed fds at their numbers, options.umask and nothing else open. Fails with kNotFound
  // when the executable is missing, kSystem when fork/exec fails (the exec error
  // is reported back through a close-on-exec pipe); no process is left then.
  static Result<VmmProcess> spawn(const SpawnOptions& options);

  // Adopts a process started earlier (not necessarily our child). kNotFound if
  // it is gone or its start time differs (the pid was reused).
  static Result<VmmProcess> adopt(const ProcessIdentity& identity);

  bool valid() const { return pidfd_.valid(); }
  const ProcessIdentity& identity() const { return identity_; }
  // The pidfd: readable once the process has exited. -1 when !valid().
  int exitFd() const { return pidfd_.get(); }

  // True while the process has not exited (the pidfd is not readable yet).
  bool running() const;

  // Sends a signal through the pidfd (no pid-reuse race). kNotFound if exited.
  Result<void> signal(int signo) const;

  // Waits until the process exits or the timeout passes; true when it exited.
  bool waitExit(std::chrono::milliseconds timeout) const;

  // A copy of the process's descriptor `remoteFd` (pidfd_getfd: the same open
  // file, as if inherited). kNotFound when the process or the fd is gone.
  Result<UniqueFd> copyFd(int remoteFd) const;

  // SIGKILL, then waits for the exit (up to 5 s) and reaps. Ok when already gone.
  Result<void> kill();

  // Collects the exit status after the process exited (waitpid for our child;
  // known=false for an adopted one) and forgets the process.
  ExitStatus reap();

 private:
  ProcessIdentity identity_;
  UniqueFd pidfd_;
  bool child_ = false;
};

}  // namespace s2z::vmm
