#include "guest/agent/exec_sessions.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "guest/agent/console_log.h"
#include "guest/agent/spawn.h"
#include "guest/agent/workload.h"

namespace s2z::guest {

namespace {

// One ExecOutput carries at most this much: frames stay far below
// guestlink's limit, and one chatty process cannot hog the channel.
constexpr size_t kChunkBytes = 32 * 1024;

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return systemError("exec: pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Result<void> setNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return systemError("exec: O_NONBLOCK");
  return okResult();
}

Result<void> setWindowSize(int fd, uint32_t rows, uint32_t columns) {
  if (rows == 0 || columns == 0) return okResult();
  winsize size{};
  size.ws_row = static_cast<unsigned short>(rows);
  size.ws_col = static_cast<unsigned short>(columns);
  if (::ioctl(fd, TIOCSWINSZ, &size) != 0) return systemError("exec: terminal size");
  return okResult();
}

// A terminal of the root's devpts instance (mounted with newinstance), so
// the program sees its own /dev/pts/N. Returns {master, slave}.
Result<std::pair<UniqueFd, UniqueFd>> openTerminal(const std::string& rootDir) {
  const std::string ptmx = rootDir + "/dev/pts/ptmx";
  UniqueFd master(::open(ptmx.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (!master) return systemError("exec: open " + ptmx);
  int unlock = 0;
  if (::ioctl(master.get(), TIOCSPTLCK, &unlock) != 0) return systemError("exec: unlock terminal");
  UniqueFd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return systemError("exec: open terminal peer");
  return std::make_pair(std::move(master), std::move(slave));
}

}  // namespace

Result<pid_t> ExecSessions::start(const std::string& rootDir, const LaunchPlan& plan,
                                  const agent::v1::ExecProcess& request) {
  if (request.exec_id() == 0) return makeError(ErrorCode::kInvalidArgument, "exec: exec_id 0");
  if (sessions_.count(request.exec_id())) {
    return makeError(ErrorCode::kAlreadyExists, "exec " + std::to_string(request.exec_id()) + " exists");
  }
  Session s;
  s.id = request.exec_id();
  s.tty = request.tty();
  Result<pid_t> pid = 0;
  if (s.tty) {
    auto terminal = openTerminal(rootDir);
    if (!terminal.ok()) return terminal.error();
    auto& [master, slave] = *terminal;
    S2Z_TRY(setWindowSize(master.get(), request.rows(), request.columns()), "");
    pid = spawnInRoot(rootDir, plan, SpawnStdio{slave.get(), slave.get(), slave.get(), true});
    s.input = std::move(master);
  } else {
    auto in = makePipe(), out = makePipe(), err = makePipe();
    if (!in.ok()) return in.error();
    if (!out.ok()) return out.error();
    if (!err.ok()) return err.error();
    for (int fd : {in->write.get(), out->read.get(), err->read.get()}) S2Z_TRY(setNonBlocking(fd), "");
    pid = spawnInRoot(rootDir, plan, SpawnStdio{in->read.get(), out->write.get(), err->write.get(), false});
    s.input = std::move(in->write);
    s.stdoutFd = std::move(out->read);
    s.stderrFd = std::move(err->read);
  }
  if (!pid.ok()) return pid.error().wrap("exec");
  s.pid = *pid;
  sessions_.emplace(s.id, std::move(s));
  return *pid;
}

Result<void> ExecSessions::writeStdin(const agent::v1::WriteStream& request) {
  auto it = sessions_.find(request.exec_id());
  if (it == sessions_.end()) {
    return makeError(ErrorCode::kNotFound, "exec " + std::to_string(request.exec_id()) + " has ended");
  }
  Session& s = it->second;
  if (s.closeInput) return makeError(ErrorCode::kFailedPrecondition, "exec: stdin already closed");
  s.pendingInput += request.data();
  if (request.close()) {
    s.closeInput = true;
    // A terminal has no half-close: its EOF character ends the reader's input.
    if (s.tty) s.pendingInput += '\x04';
  }
  writeInput(s);
  return okResult();
}

Result<void> ExecSessions::resize(const agent::v1::TtyWinResize& request) {
  auto it = sessions_.find(request.exec_id());
  if (it == sessions_.end()) {
    return makeError(ErrorCode::kNotFound, "exec " + std::to_string(request.exec_id()) + " has ended");
  }
  if (!it->second.tty) return makeError(ErrorCode::kFailedPrecondition, "exec: no terminal to resize");
  return setWindowSize(it->second.input.get(), request.rows(), request.columns());
}

Result<void> ExecSessions::signal(uint64_t execId, int signo) {
  auto it = sessions_.find(execId);
  if (it == sessions_.end()) return makeError(ErrorCode::kNotFound, "exec " + std::to_string(execId) + " has ended");
  if (::kill(it->second.pid, signo) != 0) return systemError("signal exec " + std::to_string(execId));
  return okResult();
}

void ExecSessions::addPollFds(std::vector<pollfd>& fds, bool mayRead) {
  polled_.clear();
  for (auto& [id, s] : sessions_) {
    short inputEvents = 0;
    if (!s.pendingInput.empty() && s.input) inputEvents |= POLLOUT;
    if (s.tty) {
      // One fd for both directions.
      if (mayRead && s.input) inputEvents |= POLLIN;
      if (inputEvents) {
        fds.push_back({s.input.get(), inputEvents, 0});
        polled_.push_back({id, s.input.get()});
      }
      continue;
    }
    if (inputEvents) {
      fds.push_back({s.input.get(), inputEvents, 0});
      polled_.push_back({id, s.input.get()});
    }
    if (!mayRead) continue;
    for (const UniqueFd* out : {&s.stdoutFd, &s.stderrFd}) {
      if (!*out) continue;
      fds.push_back({out->get(), POLLIN, 0});
      polled_.push_back({id, out->get()});
    }
  }
}

void ExecSessions::onPolled(const std::vector<pollfd>& fds, size_t from) {
  for (size_t i = 0; i < polled_.size() && from + i < fds.size(); ++i) {
    const pollfd& p = fds[from + i];
    if (p.revents == 0) continue;
    auto it = sessions_.find(polled_[i].id);
    if (it == sessions_.end()) continue;
    Session& s = it->second;
    if (p.revents & POLLOUT) writeInput(s);
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if (s.tty && s.input.get() == p.fd) {
      readOutput(s, Stream::kStdout, false);
    } else if (s.stdoutFd.get() == p.fd) {
      readOutput(s, Stream::kStdout, false);
    } else if (s.stderrFd.get() == p.fd) {
      readOutput(s, Stream::kStderr, false);
    } else if (s.input.get() == p.fd) {
      // The program closed its stdin: nothing more can be written.
      s.pendingInput.clear();
      s.input.reset();
    }
  }
}

void ExecSessions::writeInput(Session& s) {
  while (!s.pendingInput.empty() && s.input) {
    ssize_t n = ::write(s.input.get(), s.pendingInput.data(), s.pendingInput.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // POLLOUT says when it drains
    if (n < 0) {
      // EPIPE: the program closed its stdin (the agent ignores SIGPIPE).
      s.pendingInput.clear();
      if (!s.tty) s.input.reset();
      return;
    }
    s.pendingInput.erase(0, static_cast<size_t>(n));
  }
  if (s.pendingInput.empty() && s.closeInput && !s.tty) s.input.reset();
}

void ExecSessions::readOutput(Session& s, Stream stream, bool drain) {
  UniqueFd& fd = s.tty ? s.input : (stream == Stream::kStdout ? s.stdoutFd : s.stderrFd);
  if (!fd) return;
  char buf[kChunkBytes];
  do {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      // EOF; a terminal says EIO once no program holds its other end.
      sendOutput(s.id, stream, {}, true);
      fd.reset();
      return;
    }
    sendOutput(s.id, stream, std::string(buf, static_cast<size_t>(n)), false);
  } while (drain);
}

void ExecSessions::sendOutput(uint64_t id, Stream stream, std::string data, bool eof) {
  agent::v1::Event event;
  auto* out = event.mutable_exec_output();
  out->set_exec_id(id);
  out->set_stream(stream == Stream::kStdout ? agent::v1::ExecOutput::STDOUT : agent::v1::ExecOutput::STDERR);
  out->set_data(std::move(data));
  out->set_eof(eof);
  send_(std::move(event));
}

bool ExecSessions::onReaped(pid_t pid, int waitStatus) {
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    Session& s = it->second;
    if (s.pid != pid) continue;
    // What it wrote before it ended is in the pipe: read all of it now.
    if (s.tty) {
      readOutput(s, Stream::kStdout, true);
      if (s.input) sendOutput(s.id, Stream::kStdout, {}, true);
    } else {
      for (Stream stream : {Stream::kStdout, Stream::kStderr}) {
        readOutput(s, stream, true);
        const UniqueFd& fd = stream == Stream::kStdout ? s.stdoutFd : s.stderrFd;
        if (fd) sendOutput(s.id, stream, {}, true);  // a grandchild holds it open
      }
    }
    ExitStatus exit = exitStatusOf(waitStatus);
    agent::v1::Event event;
    auto* exited = event.mutable_exec_exited();
    exited->set_exec_id(s.id);
    exited->set_exit_code(exit.exitCode);
    exited->set_signal(exit.signal);
    logLine("exec " + std::to_string(s.id) + " exited: code " + std::to_string(exit.exitCode));
    send_(std::move(event));
    sessions_.erase(it);
    return true;
  }
  return false;
}

void ExecSessions::killAll() {
  for (auto& [id, s] : sessions_) ::kill(s.pid, SIGKILL);
}

}  // namespace s2z::guest
