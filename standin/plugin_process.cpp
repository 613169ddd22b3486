#include "standin/plugin_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <spdlog/spdlog.h>

extern char** environ;

namespace s2z::standin {

namespace {

// go-plugin reads stderr with a 64 KiB line buffer; longer lines are split.
constexpr size_t kMaxLine = 64 * 1024;

std::vector<std::string> buildEnv(const LaunchOptions& o) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (o.setMagicCookie) env[kMagicCookieKey] = kMagicCookieValue;
  env["PLUGIN_PROTOCOL_VERSIONS"] = o.protocolVersions;
  env["PLUGIN_MIN_PORT"] = "10000";
  env["PLUGIN_MAX_PORT"] = "25000";
  for (const auto& [k, v] : o.extraEnv) env[k] = v;
  for (const auto& k : o.unsetEnv) env.erase(k);
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<int> parseVersions(const std::string& list) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(std::atoi(item.c_str()));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Child side of fork: only async-signal-safe calls until execve.
[[noreturn]] void execChild(int netnsFd, int nullFd, int outW, int errW, int statusW,
                            const char* path, char* const argv[], char* const envp[]) {
  auto fail = [statusW]() {
    int err = errno;
    (void)!write(statusW, &err, sizeof err);
    _exit(127);
  };
  if (netnsFd >= 0 && setns(netnsFd, CLONE_NEWNET) != 0) fail();
  if (dup2(nullFd, 0) < 0 || dup2(outW, 1) < 0 || dup2(errW, 2) < 0) fail();
  // go-plugin starts the plugin with exec.Cmd and no ExtraFiles, and Go
  // opens every fd close-on-exec: the plugin gets stdin, stdout and stderr
  // and nothing else. So here too, whatever this process holds (a test's
  // taps, sockets, another plugin's pipes) is closed at the exec.
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) fail();
  // Reset the signal mask and dispositions the exec'd program inherits.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(path, argv, envp);
  fail();
  _exit(127);
}

}  // namespace

std::string describeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

Result<std::unique_ptr<PluginProcess>> PluginProcess::spawn(const LaunchOptions& options) {
  std::unique_ptr<PluginProcess> p(new PluginProcess());
  p->acceptedVersions_ = parseVersions(options.protocolVersions);
  int outPipe[2], errPipe[2], statusPipe[2], stopPipe[2];
  if (pipe2(outPipe, O_CLOEXEC) != 0) return systemError("plugin stdout pipe");
  UniqueFd outR(outPipe[0]), outW(outPipe[1]);
  if (pipe2(errPipe, O_CLOEXEC) != 0) return systemError("plugin stderr pipe");
  UniqueFd errR(errPipe[0]), errW(errPipe[1]);
  if (pipe2(statusPipe, O_CLOEXEC) != 0) return systemError("exec status pipe");
  UniqueFd statusR(statusPipe[0]), statusW(statusPipe[1]);
  if (pipe2(stopPipe, O_CLOEXEC) != 0) return systemError("reader stop pipe");
  p->stopRead_.reset(stopPipe[0]);
  p->stopWrite_.reset(stopPipe[1]);
  UniqueFd nullFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!nullFd) return systemError("open /dev/null");
  UniqueFd netnsFd;
  if (!options.netnsPath.empty()) {
    netnsFd.reset(open(options.netnsPath.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netnsFd) return systemError("open netns " + options.netnsPath);
  }

  std::vector<std::string> args{options.path};
  args.insert(args.end(), options.args.begin(), options.args.end());
  std::vector<std::string> env = buildEnv(options);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) return systemError("fork plugin");
  if (pid == 0) {
    execChild(netnsFd.get(), nullFd.get(), outW.get(), errW.get(), statusW.get(),
              options.path.c_str(), argv.data(), envp.data());
  }
  p->pid_ = pid;
  p->pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  statusW.reset();
  outW.reset();
  errW.reset();
  int childErrno = 0;
  ssize_t n = read(statusR.get(), &childErrno, sizeof childErrno);
  if (n == sizeof childErrno) {
    int status = 0;
    waitpid(pid, &status, 0);
    p->pid_ = -1;
    return systemError("exec plugin " + options.path, childErrno);
  }
  p->stdoutFd_ = std::move(outR);
  p->stderrFd_ = std::move(errR);
  p->stdoutThread_ = std::thread([raw = p.get()] { raw->readStdout(); });
  p->stderrThread_ = std::thread([raw = p.get()] { raw->readStderr(); });
  spdlog::info("standin: launched plugin {} pid {}", options.path, pid);
  return p;
}

Result<std::unique_ptr<PluginProcess>> PluginProcess::launch(const LaunchOptions& options) {
  auto p = spawn(options);
  if (!p.ok()) return p.error();
  auto hs = (*p)->awaitHandshake(options.startTimeout);
  if (!hs.ok()) {
    (*p)->sigkill();
    (void)(*p)->waitExit(std::chrono::seconds(5));
    return hs.error().wrap("plugin handshake");
  }
  return p;
}

Result<Handshake> PluginProcess::awaitHandshake(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  bool got = cv_.wait_for(lock, timeout, [&] { return !stdoutLines_.empty() || stdoutClosed_; });
  if (!got) return makeError(ErrorCode::kTimeout, "timeout while waiting for plugin to start");
  if (stdoutLines_.empty()) {
    return makeError(ErrorCode::kUnavailable, "plugin exited before we could connect");
  }
  std::string line = stdoutLines_.front();
  lock.unlock();
  auto hs = parseHandshake(line, acceptedVersions_);
  if (!hs.ok()) return hs.error();
  handshake_ = *hs;
  return hs;
}

template <typename F>
void PluginProcess::readLines(int fd, F onLine) {
  std::string pending;
  char buf[8192];
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stopRead_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;  // asked to stop
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos || pending.size() >= kMaxLine) {
      size_t cut = nl == std::string::npos ? kMaxLine : nl;
      onLine(pending.substr(0, cut));
      pending.erase(0, nl == std::string::npos ? cut : cut + 1);
    }
  }
  if (!pending.empty()) onLine(pending);
}

void PluginProcess::readStdout() {
  readLines(stdoutFd_.get(), [this](const std::string& line) {
    std::lock_guard lock(mu_);
    stdoutLines_.push_back(line);
    cv_.notify_all();
  });
  std::lock_guard lock(mu_);
  stdoutClosed_ = true;
  cv_.notify_all();
}

void PluginProcess::readStderr() {
  readLines(stderrFd_.get(), [this](const std::string& line) {
    HclogLine entry = parseHclogLine(line);
    for (const auto& v : entry.violations) spdlog::error("standin: plugin log violation: {}", v);
    // Re-logged at the plugin's own level, as the Nomad agent does.
    auto level = entry.level == "error" ? spdlog::level::err
                 : entry.level == "warn" ? spdlog::level::warn
                 : entry.level == "info" ? spdlog::level::info
                 : entry.level == "trace" ? spdlog::level::trace : spdlog::level::debug;
    spdlog::log(level, "plugin[{}]: {}", pid_, entry.isJson ? entry.message : entry.raw);
    std::lock_guard lock(mu_);
    stderrLines_.push_back(std::move(entry));
  });
  std::lock_guard lock(mu_);
  stderrClosed_ = true;
  cv_.notify_all();
}

std::vector<std::string> PluginProcess::stdoutLines() const {
  std::lock_guard lock(mu_);
  return stdoutLines_;
}

std::vector<HclogLine> PluginProcess::stderrLines() const {
  std::lock_guard lock(mu_);
  return stderrLines_;
}

std::string PluginProcess::stderrText() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& l : stderrLines_) out += l.raw + "\n";
  return out;
}

int PluginProcess::logViolationCount() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& l : stderrLines_) n += l.violations.empty() ? 0 : 1;
  return n;
}

int PluginProcess::nonJsonLineCount() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& l : stderrLines_) n += l.isJson ? 0 : 1;
  return n;
}

Result<int> PluginProcess::waitExit(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu_);
    if (waitStatus_) return *waitStatus_;
  }
  if (pid_ < 0) return makeError(ErrorCode::kNotFound, "plugin was never started");
  if (pidfd_) {
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    int rc;
    do {
      rc = poll(&pfd, 1, static_cast<int>(timeout.count()));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return makeError(ErrorCode::kTimeout, "plugin still running");
  }
  // One reaper at a time: a second concurrent waitpid would get ECHILD.
  std::lock_guard reap(reapMu_);
  {
    std::lock_guard lock(mu_);
    if (waitStatus_) return *waitStatus_;
  }
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return systemError("waitpid plugin");
  std::unique_lock lock(mu_);
  waitStatus_ = status;
  // What the plugin wrote before it exited is read before its exit is
  // reported, as Go's exec.Cmd.Wait finishes copying a child's output first.
  // Bounded: a child of the plugin (a VMM) may hold the pipes open.
  cv_.wait_for(lock, kOutputDrainWait, [&] { return stdoutClosed_ && stderrClosed_; });
  return status;
}

bool PluginProcess::running() {
  return !waitExit(std::chrono::milliseconds(0)).ok();
}

void PluginProcess::sigkill() {
  std::lock_guard lock(mu_);
  if (pid_ > 0 && !waitStatus_) {
    if (pidfd_) {
      syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    } else {
      kill(pid_, SIGKILL);
    }
  }
}

PluginProcess::~PluginProcess() {
  if (pid_ > 0) {
    sigkill();
    (void)waitExit(std::chrono::seconds(10));
  }
  // Children of the plugin (e.g. a VMM) may still hold the pipes open, so the
  // readers are stopped explicitly instead of waiting for EOF.
  stopWrite_.reset();
  if (stdoutThread_.joinable()) stdoutThread_.join();
  if (stderrThread_.joinable()) stderrThread_.join();
}

}  // namespace s2z::standin
