// A task's log FIFOs with the client's reader on them, as Nomad sets them up
// before StartTask (the stand-in's logmon-faithful LogCollector), so the
// benchmark's tasks run with the same log plumbing as real ones.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/result.h"
#include "standin/log_collector.h"

namespace s2z::bench {

struct TaskLogs {
  std::filesystem::path stdoutFifo, stderrFifo;
  std::unique_ptr<standin::LogCollector> reader;
};

// Creates <dir>/<task>.stdout.fifo and .stderr.fifo and starts reading them.
Result<TaskLogs> openTaskLogs(const std::filesystem::path& dir, const std::string& task);

}  // namespace s2z::bench
