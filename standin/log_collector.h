// Reads a task's stdout/stderr FIFOs exactly as Nomad's log collector
// (client/logmon/logmon.go, logRotatorWrapper) does: per FIFO one blocking
// O_RDONLY open, then copy until EOF — until the *last* writer has closed —
// and then stop for good. It never reopens a FIFO and never holds a write end
// of its own, so a driver that lets its last writer go loses every later line,
// and a driver that opens a FIFO by name after that blocks forever. Everything
// read is appended to <logs>/<task>.stdout.0 / .stderr.0 and kept for tests.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::standin {

// What one FIFO's reader has seen so far.
struct FifoReadState {
  bool opened = false;  // the blocking open returned (a writer came)
  bool eof = false;     // the last writer closed: this reader is done for good
  std::string text;
};

class LogCollector {
 public:
  // Like logmon's Close: a reader still blocked in open() is released by a
  // writer of our own that opens and closes at once; a reader still copying
  // is stopped. Joins both threads.
  ~LogCollector();
  LogCollector(const LogCollector&) = delete;
  LogCollector& operator=(const LogCollector&) = delete;

  // Starts one reader thread per FIFO (which must exist). Returns before the
  // readers' opens complete, as logmon does. Fails with kSystem.
  static Result<std::unique_ptr<LogCollector>> start(const std::string& stdoutFifo,
                                                     const std::string& stderrFifo,
                                                     const std::string& logsDir,
                                                     const std::string& taskName);

  FifoReadState stdoutState() const;
  FifoReadState stderrState() const;
  std::string stdoutText() const { return stdoutState().text; }
  std::string stderrText() const { return stderrState().text; }

 private:
  struct Reader {
    std::string fifo;
    std::string file;  // where the copy goes
    FifoReadState state;
    bool done = false;  // the thread has returned
    std::thread thread;
  };
  LogCollector() = default;
  void run(Reader& reader);

  Reader out_, err_;
  UniqueFd stopRead_, stopWrite_;
  mutable std::mutex mu_;  // guards out_.state and err_.state
};

}  // namespace s2z::standin
