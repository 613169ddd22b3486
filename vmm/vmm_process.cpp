#include "vmm/vmm_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/proc_cmdline.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace s2z::vmm {
namespace {

int pidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Fields of /proc/<pid>/stat after the command name, which may itself contain
// spaces and parentheses: everything after the last ')'.
Result<std::vector<std::string>> statFields(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return makeError(ErrorCode::kNotFound, "process " + std::to_string(pid) + " not found");
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) {
    return makeError(ErrorCode::kInternal, "unparsable /proc/" + std::to_string(pid) + "/stat");
  }
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

// Where a child failed before exec succeeded (reported through the error pipe).
constexpr int kStageSetUp = 1, kStageCgroup = 2, kStageExec = 3;
// One per cgroup v1 hierarchy a task uses (memory, cpu, freezer, cpuset) and some room.
constexpr size_t kMaxCgroups = 8;

// Everything the child needs, prepared before fork: after fork only
// async-signal-safe calls are allowed (the plugin is multithreaded).
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<InheritedFd> fds;
  int devNull = -1;
  int log = -1;
  int errWrite = -1;
  // <cgroup>/cgroup.procs of each cgroup to join, written "0" (this process) before exec.
  std::vector<int> cgroupProcs;
  const char* workDir = "/";
  mode_t umask = 077;
  int maxFd = 1024;  // for kernels without close_range (before 5.11)
};

[[noreturn]] void runChild(const ChildPlan& plan) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);  // errors for KILL/STOP: fine
  setsid();

  // Move every source above the highest target first, so no dup2 below
  // clobbers a source that happens to sit on a target number.
  int base = 3;
  for (const auto& f : plan.fds) base = std::max(base, f.childFd + 1);
  auto lift = [&](int fd) { return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, base); };
  int devNull = lift(plan.devNull);
  int log = lift(plan.log);
  int errWrite = lift(plan.errWrite);
  int joins[kMaxCgroups];
  size_t joinCount = std::min(plan.cgroupProcs.size(), kMaxCgroups);
  for (size_t i = 0; i < joinCount; ++i) joins[i] = lift(plan.cgroupProcs[i]);
  int lifted[16];
  size_t n = std::min<size_t>(plan.fds.size(), 16);
  for (size_t i = 0; i < n; ++i) lifted[i] = lift(plan.fds[i].fd);

  // The parent reads {stage, errno, which cgroup}.
  auto fail = [&](int err, int stage = kStageSetUp, int which = 0) {
    int report[3] = {stage, err, which};
    if (errWrite >= 0) (void)!::write(errWrite, report, sizeof(report));
    _exit(127);
  };
  if (devNull < 0 || errWrite < 0) fail(errno);
  for (size_t i = 0; i < joinCount; ++i) {
    if (joins[i] < 0 || ::write(joins[i], "0", 1) != 1) fail(errno, kStageCgroup, static_cast<int>(i));
  }
  if (dup2(devNull, 0) < 0) fail(errno);
  int out = log >= 0 ? log : devNull;
  if (dup2(out, 1) < 0 || dup2(out, 2) < 0) fail(errno);
  for (size_t i = 0; i < n; ++i) {
    if (lifted[i] < 0 || dup2(lifted[i], plan.fds[i].childFd) < 0) fail(errno);
  }
  // Close every low fd that is not a target; everything from base up closes at exec.
  for (int fd = 3; fd < base; ++fd) {
    bool keep = false;
    for (size_t i = 0; i < n; ++i) keep = keep || plan.fds[i].childFd == fd;
    if (!keep) ::close(fd);
  }
  if (::syscall(SYS_close_range, base, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = base; fd < plan.maxFd; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (chdir(plan.workDir) != 0) fail(errno);
  ::umask(plan.umask);  // async-signal-safe; set before exec so every file the VMM makes gets it
  execv(plan.argv[0], plan.argv.data());
  fail(errno, kStageExec);
  _exit(127);
}

}  // namespace

Result<std::filesystem::path> resolveExecutable(const std::filesystem::path& name) {
  std::string text = name.string();
  if (text.find('/') != std::string::npos) {
    if (::access(text.c_str(), X_OK) == 0) return name;
    return Error{ErrorCode::kNotFound, errno, "cannot execute " + text};
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::istringstream in(dirs);
  for (std::string dir; std::getline(in, dir, ':');) {
    if (dir.empty()) continue;
    auto candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return makeError(ErrorCode::kNotFound, text + " not found in PATH");
}

std::vector<pid_t> processesMentioning(const std::string& needle) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (processCommandLine(pid).find(needle) != std::string::npos) pids.push_back(pid);
  }
  return pids;
}

Result<uint64_t> processStartTime(pid_t pid) {
  auto fields = statFields(pid);
  if (!fields.ok()) return fields.error();
  // Field 22 overall; fields[0] is field 3 (state).
  if (fields->size() < 20) return makeError(ErrorCode::kInternal, "short /proc stat line");
  return std::stoull((*fields)[19]);
}

Result<VmmProcess> VmmProcess::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return makeError(ErrorCode::kInvalidArgument, "spawn: empty argv");
  if (options.fds.size() > 16) return makeError(ErrorCode::kInvalidArgument, "spawn: too many fds");
  for (const auto& f : options.fds) {
    if (f.childFd < 3 || f.fd < 0) {
      return makeError(ErrorCode::kInvalidArgument, "spawn: bad inherited fd " + std::to_string(f.fd) +
                                                        " -> " + std::to_string(f.childFd));
    }
  }
  auto resolved = resolveExecutable(options.argv[0]);
  if (!resolved.ok()) return resolved.error().wrap("spawn");
  const std::string exe = resolved->string();

  UniqueFd devNull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devNull) return systemError("spawn: open /dev/null");
  UniqueFd log;
  if (options.outputFd >= 0) {
    log.reset(::fcntl(options.outputFd, F_DUPFD_CLOEXEC, 3));
    if (!log) return systemError("spawn: dup output fd");
  } else if (!options.logPath.empty()) {
    log.reset(::open(options.logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log) return systemError("spawn: open log " + options.logPath.string());
  }
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return systemError("spawn: pipe2");
  UniqueFd errRead(pipeFds[0]), errWrite(pipeFds[1]);

  std::vector<std::string> args = options.argv;  // stable storage for char*
  args[0] = exe;
  ChildPlan plan;
  for (auto& a : args) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  plan.fds = options.fds;
  plan.devNull = devNull.get();
  plan.log = log.get();
  plan.errWrite = errWrite.get();
  std::string workDir = options.workDir.empty() ? "/" : options.workDir.string();
  plan.workDir = workDir.c_str();
  plan.umask = options.umask;
  if (options.cgroups.size() > kMaxCgroups) return makeError(ErrorCode::kInvalidArgument, "spawn: too many cgroups");
  std::vector<UniqueFd> cgroupProcs;
  for (const auto& dir : options.cgroups) {
    auto procs = dir / "cgroup.procs";
    cgroupProcs.emplace_back(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!cgroupProcs.back()) return systemError("spawn: open " + procs.string());
    plan.cgroupProcs.push_back(cgroupProcs.back().get());
  }
  plan.maxFd = static_cast<int>(std::min<long>(::sysconf(_SC_OPEN_MAX), 65536));

  pid_t pid = ::fork();
  if (pid < 0) return systemError("spawn: fork");
  if (pid == 0) runChild(plan);

  errWrite.reset();
  int report[3] = {0, 0, 0};
  ssize_t r;
  do {
    r = ::read(errRead.get(), report, sizeof(report));
  } while (r < 0 && errno == EINTR);
  if (r == static_cast<ssize_t>(sizeof(report))) {
    int status;
    ::waitpid(pid, &status, 0);
    if (report[0] == kStageCgroup) {
      auto which = static_cast<size_t>(report[2]);
      std::string dir = which < options.cgroups.size() ? options.cgroups[which].string() : "?";
      return Error{ErrorCode::kSystem, report[1], "spawn: join cgroup " + dir};
    }
    return Error{ErrorCode::kSystem, report[1], "spawn: exec " + exe};
  }

  VmmProcess p;
  p.child_ = true;
  p.identity_.pid = pid;
  p.pidfd_.reset(pidfdOpen(pid));
  if (!p.pidfd_) {
    Error e = systemError("spawn: pidfd_open");
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return e;
  }
  auto start = processStartTime(pid);
  if (!start.ok()) {
    // Exited already (e.g. bad arguments): still report a process the caller can reap.
    p.identity_.startTime = 0;
  } else {
    p.identity_.startTime = *start;
  }
  return p;
}

Result<VmmProcess> VmmProcess::adopt(const ProcessIdentity& identity) {
  if (identity.pid <= 0) return makeError(ErrorCode::kNotFound, "adopt: no pid");
  VmmProcess p;
  // Open the pidfd first, then check the start time: if it matches, the pidfd
  // refers to the very process we started (a reused pid would differ).
  p.pidfd_.reset(pidfdOpen(identity.pid));
  if (!p.pidfd_) {
    return Error{ErrorCode::kNotFound, errno, "adopt: process " + std::to_string(identity.pid)};
  }
  auto fields = statFields(identity.pid);
  if (!fields.ok()) return fields.error().wrap("adopt");
  if (fields->size() < 20 || std::stoull((*fields)[19]) != identity.startTime) {
    return makeError(ErrorCode::kNotFound, "adopt: process " + std::to_string(identity.pid) +
                                               " has a different start time (pid reused)");
  }
  if ((*fields)[0] == "Z" || (*fields)[0] == "X") {
    // A zombie is still ours to reap if it is our child; otherwise it is gone.
    if (std::stoi((*fields)[1]) != ::getpid()) {
      return makeError(ErrorCode::kNotFound, "adopt: process " + std::to_string(identity.pid) + " exited");
    }
  }
  p.identity_ = identity;
  p.child_ = std::stoi((*fields)[1]) == ::getpid();
  return p;
}

bool VmmProcess::running() const { return valid() && !waitExit(std::chrono::milliseconds(0)); }

Result<void> VmmProcess::signal(int signo) const {
  if (!valid()) return makeError(ErrorCode::kNotFound, "signal: no process");
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signo, nullptr, 0) != 0) {
    if (errno == ESRCH) return Error{ErrorCode::kNotFound, errno, "signal: process exited"};
    return systemError("signal " + std::to_string(signo));
  }
  return okResult();
}

Result<UniqueFd> VmmProcess::copyFd(int remoteFd) const {
  if (!valid()) return makeError(ErrorCode::kNotFound, "copy fd: no process");
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd_.get(), remoteFd, 0)));
  if (!fd) {
    std::string what = "copy fd " + std::to_string(remoteFd) + " of process " +
                       std::to_string(identity_.pid);
    if (errno == ESRCH || errno == EBADF) return Error{ErrorCode::kNotFound, errno, what};
    return systemError(what);
  }
  return fd;
}

bool VmmProcess::waitExit(std::chrono::milliseconds timeout) const {
  if (!valid()) return true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

Result<void> VmmProcess::kill() {
  if (!valid()) return okResult();
  auto sent = signal(SIGKILL);
  if (!sent.ok() && sent.error().code != ErrorCode::kNotFound) return sent.error();
  if (!waitExit(std::chrono::seconds(5))) {
    return makeError(ErrorCode::kTimeout,
                     "kill: process " + std::to_string(identity_.pid) + " survived SIGKILL");
  }
  reap();
  return okResult();
}

ExitStatus VmmProcess::reap() {
  ExitStatus st;
  if (!valid()) {
    st.known = false;
    return st;
  }
  st.known = false;
  if (child_) {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(identity_.pid, &status, running() ? WNOHANG : 0);
    } while (r < 0 && errno == EINTR);
    if (r == identity_.pid) {
      st.known = true;
      if (WIFEXITED(status)) st.exitCode = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) st.signal = WTERMSIG(status);
    }
  }
  pidfd_.reset();
  identity_ = ProcessIdentity{};
  child_ = false;
  return st;
}

}  // namespace s2z::vmm
