#include "agent/task_output.h"

#include <fcntl.h>

#include <thread>

#include <spdlog/spdlog.h>

namespace s2z::agent {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kReaderPoll{10};

// One non-blocking attempt. A FIFO with no reader refuses a non-blocking
// writer with ENXIO, where a blocking open would wait forever.
Result<UniqueFd> tryOpenWriter(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return systemError("open " + path.string() + " for writing");
  // From here writes block like any log writer's (docker's, the executor's)
  // instead of dropping output when the collector falls behind. The VMMs
  // share this open file, so this is the mode they write in too.
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return systemError("make " + path.string() + " blocking");
  }
  return fd;
}

Result<UniqueFd> openWriter(const std::filesystem::path& path, Clock::time_point deadline,
                            std::chrono::milliseconds readerWait) {
  for (;;) {
    auto fd = tryOpenWriter(path);
    if (fd.ok() || fd.error().errnum != ENXIO) return fd;
    if (Clock::now() >= deadline) {
      return makeError(ErrorCode::kUnavailable,
                       "task log FIFO " + path.string() + " has no reader after " +
                           std::to_string(readerWait.count()) +
                           " ms (the client's log collector has not opened it)");
    }
    std::this_thread::sleep_for(kReaderPoll);
  }
}

}  // namespace

Result<std::unique_ptr<TaskOutput>> TaskOutput::open(const OutputPaths& paths,
                                                     const OutputHolderCommand& holder,
                                                     std::chrono::milliseconds readerWait) {
  std::unique_ptr<TaskOutput> out(new TaskOutput(holder));
  auto deadline = Clock::now() + readerWait;
  if (!paths.stdoutPath.empty()) {
    auto fd = openWriter(paths.stdoutPath, deadline, readerWait);
    if (!fd.ok()) return fd.error().wrap("stdout");
    out->stdout_ = std::move(*fd);
  }
  if (!paths.stderrPath.empty()) {
    auto fd = openWriter(paths.stderrPath, deadline, readerWait);
    if (!fd.ok()) return fd.error().wrap("stderr");
    out->stderr_ = std::move(*fd);
  }
  S2Z_TRY(out->startHolder(), "log FIFO holder");
  return out;
}

Result<std::unique_ptr<TaskOutput>> TaskOutput::recover(const OutputPaths& paths,
                                                        const vmm::ProcessIdentity& holder,
                                                        const OutputHolderCommand& command) {
  std::unique_ptr<TaskOutput> out(new TaskOutput(command));
  if (paths.empty()) return out;
  if (holder.pid != 0) {
    auto adopted = vmm::VmmProcess::adopt(holder);
    if (adopted.ok()) {
      out->holder_ = std::move(*adopted);
      auto o = out->holder_.copyFd(kHolderStdoutFd);
      auto e = out->holder_.copyFd(kHolderStderrFd);
      if (o.ok() && e.ok()) {
        if (!paths.stdoutPath.empty()) out->stdout_ = std::move(*o);
        if (!paths.stderrPath.empty()) out->stderr_ = std::move(*e);
        return out;
      }
      // A holder that lost its fds is of no use: replace it.
      spdlog::warn("log FIFO holder {}: {}", holder.pid,
                   (o.ok() ? e.error() : o.error()).describe());
      (void)out->holder_.kill();
    }
  }
  // No holder: the VMM may still hold the FIFOs open, so the collector is
  // still reading; if not, it saw EOF and stopped for good (ENXIO now).
  std::string lost;
  auto reopen = [&lost](const std::filesystem::path& path, UniqueFd& into) {
    if (path.empty()) return;
    auto fd = tryOpenWriter(path);
    if (fd.ok()) {
      into = std::move(*fd);
      return;
    }
    if (!lost.empty()) lost += "; ";
    lost += fd.error().errnum == ENXIO ? path.string() + " has no reader any more"
                                       : fd.error().describe();
  };
  reopen(paths.stdoutPath, out->stdout_);
  reopen(paths.stderrPath, out->stderr_);
  out->lost_ = lost;
  if (out->stdout_ || out->stderr_) {
    // The task runs on without a holder; the next sleep edge tries again.
    if (auto started = out->startHolder(); !started.ok()) {
      spdlog::warn("log FIFO holder: {}", started.error().describe());
    }
  }
  return out;
}

Result<void> TaskOutput::startHolder() {
  if (command_.argv.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "no holder command configured");
  }
  // The holder wants both numbers taken; a missing FIFO is /dev/null there.
  UniqueFd devNull;
  if (!stdout_ || !stderr_) {
    devNull.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!devNull) return systemError("open /dev/null");
  }
  vmm::SpawnOptions opts;
  opts.argv = command_.argv;
  opts.cgroups = command_.cgroups;
  opts.fds = {{stdout_ ? stdout_.get() : devNull.get(), kHolderStdoutFd},
              {stderr_ ? stderr_.get() : devNull.get(), kHolderStderrFd}};
  auto spawned = vmm::VmmProcess::spawn(opts);
  if (!spawned.ok()) return spawned.error();
  holder_ = std::move(*spawned);
  if (!holder_.running()) {
    vmm::ExitStatus st = holder_.reap();
    return makeError(ErrorCode::kInternal, "holder " + command_.argv[0] + " exited at once (code " +
                                               std::to_string(st.exitCode) + ")");
  }
  return okResult();
}

vmm::ProcessIdentity TaskOutput::holder() const {
  return holder_.valid() ? holder_.identity() : vmm::ProcessIdentity{};
}

Result<void> TaskOutput::ensureHolder() {
  if (holder_.running() || (!stdout_ && !stderr_)) return okResult();
  if (holder_.valid()) {
    vmm::ExitStatus st = holder_.reap();
    spdlog::warn("log FIFO holder exited (code {}, signal {}); starting a new one", st.exitCode,
                 st.signal);
  }
  return startHolder();
}

void TaskOutput::release() {
  stdout_.reset();
  stderr_.reset();
  if (!holder_.valid()) return;
  if (auto killed = holder_.kill(); !killed.ok()) {
    spdlog::error("log FIFO holder {}: {}", holder_.identity().pid, killed.error().describe());
  }
}

}  // namespace s2z::agent
