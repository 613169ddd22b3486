#include "guest/agent/output_relay.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace s2z::guest {
namespace {

// As an exec's output: one event per read, well below the frame limit.
constexpr size_t kChunkBytes = 32 * 1024;

// A pipe whose read end (first) does not block; both CLOEXEC, so only the
// workload's dup2 makes the write end its stdout or stderr.
Result<std::pair<UniqueFd, UniqueFd>> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return systemError("output pipe");
  UniqueFd read(fds[0]), write(fds[1]);
  int flags = ::fcntl(read.get(), F_GETFL);
  if (flags < 0 || ::fcntl(read.get(), F_SETFL, flags | O_NONBLOCK) != 0) return systemError("output pipe: O_NONBLOCK");
  return std::make_pair(std::move(read), std::move(write));
}

}  // namespace

Result<OutputRelay> OutputRelay::create() {
  auto out = makePipe();
  if (!out.ok()) return out.error();
  auto err = makePipe();
  if (!err.ok()) return err.error();
  return OutputRelay(std::move(out->first), std::move(out->second), std::move(err->first),
                     std::move(err->second));
}

OutputRelay::OutputRelay(UniqueFd outRead, UniqueFd outWrite, UniqueFd errRead, UniqueFd errWrite)
    : stdoutRead_(std::move(outRead)),
      stdoutWrite_(std::move(outWrite)),
      stderrRead_(std::move(errRead)),
      stderrWrite_(std::move(errWrite)) {}

void OutputRelay::addPollFds(std::vector<pollfd>& fds, bool mayRead) {
  polled_ = 0;
  if (!mayRead) return;
  fds.push_back({stdoutRead_.get(), POLLIN, 0});
  fds.push_back({stderrRead_.get(), POLLIN, 0});
  polled_ = 2;
}

void OutputRelay::onPolled(const std::vector<pollfd>& fds, size_t from, const SendEvent& send) {
  for (size_t i = 0; i < polled_ && from + i < fds.size(); ++i) {
    const pollfd& p = fds[from + i];
    if (!(p.revents & POLLIN)) continue;
    relay(p.fd, p.fd == stdoutRead_.get() ? agent::v1::ExecOutput::STDOUT : agent::v1::ExecOutput::STDERR, false,
          send);
  }
}

void OutputRelay::drain(const SendEvent& send) {
  relay(stdoutRead_.get(), agent::v1::ExecOutput::STDOUT, true, send);
  relay(stderrRead_.get(), agent::v1::ExecOutput::STDERR, true, send);
}

void OutputRelay::relay(int fd, agent::v1::ExecOutput::Stream stream, bool drain, const SendEvent& send) {
  char buf[kChunkBytes];
  do {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: empty (EOF cannot happen: we hold the write end)
    agent::v1::Event event;
    auto* out = event.mutable_workload_output();
    out->set_stream(stream);
    out->set_data(std::string(buf, static_cast<size_t>(n)));
    send(std::move(event));
  } while (drain);
}

}  // namespace s2z::guest
