#include "agent/guest_exec_session.h"

#include <csignal>

namespace s2z::agent {

GuestExecSession::GuestExecSession(std::shared_ptr<GuestChannel> channel, uint64_t execId,
                                   std::shared_ptr<ExecStream> stream, std::shared_ptr<std::atomic<int>> openCount)
    : channel_(std::move(channel)), execId_(execId), stream_(std::move(stream)), openCount_(std::move(openCount)) {
  ++*openCount_;
}

GuestExecSession::~GuestExecSession() {
  // Abandoned mid-run (the client went away, a check timed out): nobody
  // reads it any more.
  if (!exited_) (void)signal(SIGKILL);
  channel_->closeExec(execId_);
  --*openCount_;
}

Result<void> GuestExecSession::writeStdin(std::string data) {
  pb::Request request;
  auto* write = request.mutable_write_stream();
  write->set_exec_id(execId_);
  write->set_data(std::move(data));
  channel_->post(std::move(request));
  return okResult();
}

Result<void> GuestExecSession::closeStdin() {
  pb::Request request;
  request.mutable_write_stream()->set_exec_id(execId_);
  request.mutable_write_stream()->set_close(true);
  channel_->post(std::move(request));
  return okResult();
}

Result<void> GuestExecSession::resize(uint32_t rows, uint32_t columns) {
  pb::Request request;
  auto* resize = request.mutable_tty_win_resize();
  resize->set_exec_id(execId_);
  resize->set_rows(rows);
  resize->set_columns(columns);
  channel_->post(std::move(request));
  return okResult();
}

Result<void> GuestExecSession::signal(int signo) {
  pb::Request request;
  request.mutable_signal_process()->set_exec_id(execId_);
  request.mutable_signal_process()->set_signal(signo);
  channel_->post(std::move(request));
  return okResult();
}

Result<ExecEvent> GuestExecSession::next(std::chrono::milliseconds timeout) {
  auto event = stream_->next(timeout);
  if (event.ok() && event->kind == ExecEvent::Kind::kExited) exited_ = true;
  if (!event.ok() && event.error().code == ErrorCode::kUnavailable) exited_ = true;
  return event;
}

}  // namespace s2z::agent
