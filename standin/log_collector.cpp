#include "standin/log_collector.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <fstream>

#include <spdlog/spdlog.h>

namespace s2z::standin {

Result<std::unique_ptr<LogCollector>> LogCollector::start(const std::string& stdoutFifo,
                                                          const std::string& stderrFifo,
                                                          const std::string& logsDir,
                                                          const std::string& taskName) {
  std::unique_ptr<LogCollector> c(new LogCollector());
  int stop[2];
  if (pipe2(stop, O_CLOEXEC) != 0) return systemError("log collector stop pipe");
  c->stopRead_.reset(stop[0]);
  c->stopWrite_.reset(stop[1]);
  c->out_.fifo = stdoutFifo;
  c->out_.file = logsDir + "/" + taskName + ".stdout.0";
  c->err_.fifo = stderrFifo;
  c->err_.file = logsDir + "/" + taskName + ".stderr.0";
  for (Reader* r : {&c->out_, &c->err_}) {
    if (access(r->fifo.c_str(), F_OK) != 0) return systemError("log collector: " + r->fifo);
  }
  c->out_.thread = std::thread([raw = c.get()] { raw->run(raw->out_); });
  c->err_.thread = std::thread([raw = c.get()] { raw->run(raw->err_); });
  return c;
}

void LogCollector::run(Reader& reader) {
  struct MarkDone {
    LogCollector& c;
    Reader& r;
    ~MarkDone() {
      std::lock_guard lock(c.mu_);
      r.done = true;
    }
  } markDone{*this, reader};
  // fifo.OpenReader: a plain blocking open for reading, which returns once a
  // writer has opened the FIFO.
  UniqueFd fd(open(reader.fifo.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    spdlog::warn("standin: log collector: open {}: {}", reader.fifo, strerror(errno));
    return;
  }
  {
    std::lock_guard lock(mu_);
    reader.state.opened = true;
  }
  std::ofstream copy(reader.file, std::ios::app | std::ios::binary);
  char buf[16384];
  for (;;) {
    // io.Copy until EOF; the poll only lets the destructor stop us.
    pollfd fds[2] = {{fd.get(), POLLIN, 0}, {stopRead_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents == 0 && fds[1].revents != 0) return;
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // EOF: every writer has closed. logmon stops here for good.
      std::lock_guard lock(mu_);
      reader.state.eof = true;
      spdlog::info("standin: log collector: {} reached EOF; not reading it again", reader.fifo);
      return;
    }
    copy.write(buf, n).flush();
    std::lock_guard lock(mu_);
    reader.state.text.append(buf, static_cast<size_t>(n));
  }
}

FifoReadState LogCollector::stdoutState() const {
  std::lock_guard lock(mu_);
  return out_.state;
}

FifoReadState LogCollector::stderrState() const {
  std::lock_guard lock(mu_);
  return err_.state;
}

LogCollector::~LogCollector() {
  stopWrite_.reset();
  for (Reader* r : {&out_, &err_}) {
    for (;;) {
      bool opened, done;
      {
        std::lock_guard lock(mu_);
        opened = r->state.opened;
        done = r->done;
      }
      if (done) break;
      // A reader blocked in open() waits for a writer: be that writer for a
      // moment (ENXIO while the thread has not reached its open yet: retry).
      if (!opened) UniqueFd unblock(open(r->fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (r->thread.joinable()) r->thread.join();
  }
}

}  // namespace s2z::standin
