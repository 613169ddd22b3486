#include "bench/task_logs.h"

#include <sys/stat.h>

namespace s2z::bench {

Result<TaskLogs> openTaskLogs(const std::filesystem::path& dir, const std::string& task) {
  TaskLogs logs;
  logs.stdoutFifo = dir / (task + ".stdout.fifo");
  logs.stderrFifo = dir / (task + ".stderr.fifo");
  for (const auto& fifo : {logs.stdoutFifo, logs.stderrFifo}) {
    if (::mkfifo(fifo.c_str(), 0600) != 0 && errno != EEXIST) {
      return systemError("mkfifo " + fifo.string());
    }
  }
  auto reader = standin::LogCollector::start(logs.stdoutFifo, logs.stderrFifo, dir, task);
  if (!reader.ok()) return reader.error();
  logs.reader = std::move(*reader);
  return logs;
}

}  // namespace s2z::bench
