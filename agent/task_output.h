// The write ends of one task's stdout and stderr FIFOs, held from start until
// the task has exited.
//
// Nomad's log collector opens each FIFO once, copies until its *last* writer
// closes, and never reopens it within a task run (protocol doc, stdout_path).
// A VMM that exits at sleep must therefore never be the last writer, and no
// VMM may open the FIFO by name (with no reader left that open blocks forever).
// So: the agent opens both write ends once, without blocking, and passes the
// fd to every VMM it starts; a holder process keeps a second copy open while no
// plugin runs (a crash, an upgrade) and while no VMM runs (a deep sleep). The
// next plugin takes the copies back from the holder with pidfd_getfd.
//
// Why a process per task and not a per-host one: it needs no protocol (the
// fds are inherited at spawn and copied back by pidfd), a task's holder dies
// with nothing but that task's output, and a small static program costs
// ~44 KiB of private memory (README benchmark: "log FIFO holder").
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/vmm.h"
#include "vmm/vmm_process.h"

namespace s2z::agent {

struct OutputPaths {
  std::filesystem::path stdoutPath;  // both empty: the client collects no logs
  std::filesystem::path stderrPath;
  bool empty() const { return stdoutPath.empty() && stderrPath.empty(); }
};

// How to start a holder: argv to which the holder gets the two write ends as
// fds kHolderStdoutFd and kHolderStderrFd: the s2z-log-holder program
// (log_holder_program.c) as installed by log_holder_install.h.
struct OutputHolderCommand {
  std::vector<std::string> argv;
  // The task's cgroups (TaskCgroup::joined()): a helper process of the task
  // is charged to it like its VMM; empty: the plugin's.
  std::vector<std::filesystem::path> cgroups;
};
inline constexpr int kHolderStdoutFd = 3;
inline constexpr int kHolderStderrFd = 4;

class TaskOutput {
 public:
  // Opens both FIFOs for writing without ever blocking: while the log
  // collector has not opened a FIFO yet (ENXIO) the open is retried every
  // 10 ms until `readerWait` has passed, then fails with kUnavailable naming
  // the FIFO. A path that is a regular file is appended to. Then starts the
  // holder. On failure nothing is left open or running.
  static Result<std::unique_ptr<TaskOutput>> open(const OutputPaths& paths,
                                                  const OutputHolderCommand& holder,
                                                  std::chrono::milliseconds readerWait);

  // In a new plugin: copies the write ends back from the recorded holder. If
  // the holder is gone, reopens the FIFOs (no waiting: a collector that found
  // EOF will not come back) and starts a new holder; a FIFO that cannot be
  // reopened is left out and lost() says why (its output cannot reach Nomad).
  static Result<std::unique_ptr<TaskOutput>> recover(const OutputPaths& paths,
                                                     const vmm::ProcessIdentity& holder,
                                                     const OutputHolderCommand& command);

  // Leaves the holder running: the task outlives this plugin process.
  ~TaskOutput() = default;
  TaskOutput(const TaskOutput&) = delete;
  TaskOutput& operator=(const TaskOutput&) = delete;

  int stdoutFd() const { return stdout_.get(); }  // -1 when none
  int stderrFd() const { return stderr_.get(); }
  // The holder process; pid 0 once released (or when none could be started).
  vmm::ProcessIdentity holder() const;
  // Why a FIFO was not recovered; empty when both are held.
  const std::string& lost() const { return lost_; }

  // Starts a new holder from our own fds when the recorded one has died (a
  // plugin crash after that would otherwise end the task's logs). Cheap when
  // it lives: one poll of its pidfd.
  Result<void> ensureHolder();

  // The task has exited: closes our write ends and ends the holder, so the
  // collector reads to EOF once the VMM's copy is closed too. Idempotent.
  void release();

 private:
  explicit TaskOutput(OutputHolderCommand command) : command_(std::move(command)) {}
  Result<void> startHolder();

  OutputHolderCommand command_;
  UniqueFd stdout_, stderr_;
  vmm::VmmProcess holder_;
  std::string lost_;
};

}  // namespace s2z::agent
