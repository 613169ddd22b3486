// ExecSession (instance.h) for an agent task: a command the guest agent runs
// beside the workload, driven over the task's GuestChannel. Its requests are
// posted in order (stdin, close, resize, signals); its output and exit come
// through the channel's ExecStream for its id.
#pragma once

#include <atomic>
#include <memory>

#include "agent/exec_stream.h"
#include "agent/guest_channel.h"
#include "agent/instance.h"

namespace s2z::agent {

class GuestExecSession final : public ExecSession {
 public:
  // openCount: the instance's count of open sessions (held up while this
  // one lives, so the task does not fall asleep under it).
  GuestExecSession(std::shared_ptr<GuestChannel> channel, uint64_t execId, std::shared_ptr<ExecStream> stream,
                   std::shared_ptr<std::atomic<int>> openCount);
  ~GuestExecSession() override;

  Result<void> writeStdin(std::string data) override;
  Result<void> closeStdin() override;
  Result<void> resize(uint32_t rows, uint32_t columns) override;
  Result<void> signal(int signo) override;
  Result<ExecEvent> next(std::chrono::milliseconds timeout) override;

 private:
  const std::shared_ptr<GuestChannel> channel_;
  const uint64_t execId_;
  const std::shared_ptr<ExecStream> stream_;
  const std::shared_ptr<std::atomic<int>> openCount_;
  bool exited_ = false;
};

}  // namespace s2z::agent
