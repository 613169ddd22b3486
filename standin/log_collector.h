// Reads a task's stdout/stderr FIFOs like Nomad's logmon: keeps them open for
// the task's lifetime (so a driver reopening them never sees ENXIO and output
// is never lost between writers), appends everything to
// <logs>/<task>.stdout.0 / .stderr.0 and keeps the text for tests.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::standin {

class LogCollector {
 public:
  ~LogCollector();  // stops the reader thread
  LogCollector(const LogCollector&) = delete;
  LogCollector& operator=(const LogCollector&) = delete;

  // Opens both FIFOs (which must exist) and starts reading. Fails with kSystem.
  static Result<std::unique_ptr<LogCollector>> start(const std::string& stdoutFifo,
                                                     const std::string& stderrFifo,
                                                     const std::string& logsDir,
                                                     const std::string& taskName);

  std::string stdoutText() const;
  std::string stderrText() const;

 private:
  LogCollector() = default;
  void run();

  UniqueFd outRead_, outHold_, errRead_, errHold_;
  UniqueFd stopRead_, stopWrite_;
  std::string outFile_, errFile_;
  mutable std::mutex mu_;  // guards the two buffers
  std::string out_, err_;
  std::thread thread_;
};

}  // namespace s2z::standin
