#include "standin/log_collector.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <fstream>

namespace s2z::standin {

Result<std::unique_ptr<LogCollector>> LogCollector::start(const std::string& stdoutFifo,
                                                          const std::string& stderrFifo,
                                                          const std::string& logsDir,
                                                          const std::string& taskName) {
  std::unique_ptr<LogCollector> c(new LogCollector());
  // Open the read end non-blocking first, then hold a write end ourselves so
  // the reader sees no EOF/HUP between the driver's writers.
  c->outRead_.reset(open(stdoutFifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!c->outRead_) return systemError("open " + stdoutFifo);
  c->outHold_.reset(open(stdoutFifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!c->outHold_) return systemError("hold " + stdoutFifo);
  c->errRead_.reset(open(stderrFifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!c->errRead_) return systemError("open " + stderrFifo);
  c->errHold_.reset(open(stderrFifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!c->errHold_) return systemError("hold " + stderrFifo);
  int stop[2];
  if (pipe2(stop, O_CLOEXEC) != 0) return systemError("log collector stop pipe");
  c->stopRead_.reset(stop[0]);
  c->stopWrite_.reset(stop[1]);
  c->outFile_ = logsDir + "/" + taskName + ".stdout.0";
  c->errFile_ = logsDir + "/" + taskName + ".stderr.0";
  c->thread_ = std::thread([raw = c.get()] { raw->run(); });
  return c;
}

void LogCollector::run() {
  std::ofstream outFile(outFile_, std::ios::app | std::ios::binary);
  std::ofstream errFile(errFile_, std::ios::app | std::ios::binary);
  char buf[16384];
  for (;;) {
    pollfd fds[3] = {{outRead_.get(), POLLIN, 0}, {errRead_.get(), POLLIN, 0},
                     {stopRead_.get(), POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[2].revents) return;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) continue;
      std::lock_guard lock(mu_);
      (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
      (i == 0 ? outFile : errFile).write(buf, n).flush();
    }
  }
}

std::string LogCollector::stdoutText() const {
  std::lock_guard lock(mu_);
  return out_;
}

std::string LogCollector::stderrText() const {
  std::lock_guard lock(mu_);
  return err_;
}

LogCollector::~LogCollector() {
  stopWrite_.reset();
  if (thread_.joinable()) thread_.join();
}

}  // namespace s2z::standin
