#include "driver/signal_watcher.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>

#include <spdlog/spdlog.h>

namespace s2z::driver {
namespace {

// The one piece of process-wide mutable state: a signal handler can reach
// nothing else. Set while a SignalWatcher exists.
std::atomic<int> gSignalPipe{-1};

constexpr char kStopByte = 0;

void onSignal(int signo) {
  int saved = errno;
  int fd = gSignalPipe.load();
  if (fd >= 0) {
    char byte = static_cast<char>(signo);
    [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
  }
  errno = saved;
}

void setHandler(int signo, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(signo, &sa, nullptr);
}

void noop(int) {}

}  // namespace

Result<std::unique_ptr<SignalWatcher>> SignalWatcher::install(std::function<void()> onTerminate) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return systemError("signal pipe");
  UniqueFd readEnd(fds[0]), writeEnd(fds[1]);
  // Blocking reads on the watcher side.
  ::fcntl(readEnd.get(), F_SETFL, 0);
  int expected = -1;
  if (!gSignalPipe.compare_exchange_strong(expected, writeEnd.get())) {
    return makeError(ErrorCode::kAlreadyExists, "a signal watcher is already installed");
  }
  auto watcher = std::unique_ptr<SignalWatcher>(
      new SignalWatcher(std::move(readEnd), std::move(writeEnd), std::move(onTerminate)));
  setHandler(SIGINT, onSignal);
  setHandler(SIGTERM, onSignal);
  setHandler(SIGPIPE, noop);
  return watcher;
}

SignalWatcher::SignalWatcher(UniqueFd readEnd, UniqueFd writeEnd, std::function<void()> onTerminate)
    : readEnd_(std::move(readEnd)), writeEnd_(std::move(writeEnd)), onTerminate_(std::move(onTerminate)) {
  thread_ = std::thread([this] { run(); });
}

SignalWatcher::~SignalWatcher() {
  setHandler(SIGINT, SIG_DFL);
  setHandler(SIGTERM, SIG_DFL);
  setHandler(SIGPIPE, SIG_DFL);
  char stop = kStopByte;
  [[maybe_unused]] ssize_t n = ::write(writeEnd_.get(), &stop, 1);
  if (thread_.joinable()) thread_.join();
  gSignalPipe.store(-1);
}

void SignalWatcher::run() {
  while (true) {
    char byte = 0;
    ssize_t n = ::read(readEnd_.get(), &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || byte == kStopByte) return;
    if (byte == SIGINT) {
      unsigned count = ++interrupts_;
      spdlog::debug("plugin received interrupt signal (count {}); ignoring", count);
    } else if (byte == SIGTERM) {
      spdlog::info("plugin received SIGTERM; shutting down");
      if (onTerminate_) onTerminate_();
    }
  }
}

}  // namespace s2z::driver
