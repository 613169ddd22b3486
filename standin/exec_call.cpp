#include "standin/exec_call.h"

#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include "standin/plugin_instance.h"
#include "standin/proto_records.h"
#include "standin/rpc_error.h"

namespace s2z::standin {

using Clock = std::chrono::steady_clock;

Result<ExecTaskOutcome> runExecTask(PluginInstance& plugin, const std::string& taskId,
                                    const std::vector<std::string>& command, std::chrono::milliseconds timeout) {
  drivers::ExecTaskRequest req;
  req.set_task_id(taskId);
  for (const auto& c : command) req.add_command(c);
  *req.mutable_timeout() = google::protobuf::util::TimeUtil::MillisecondsToDuration(timeout.count());
  drivers::ExecTaskResponse resp;
  grpc::ClientContext ctx;
  // The check gives up at its timeout: it cancels its context.
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Status st = plugin.driver().ExecTask(&ctx, req, &resp);
  ExecTaskOutcome out;
  if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    out.timedOut = true;
    return out;
  }
  if (!st.ok()) return rpcError("ExecTask", st);
  if (!resp.has_result()) return makeError(ErrorCode::kInternal, "ExecTask: response without result");
  out.stdoutText = resp.stdout();
  out.stderrText = resp.stderr();
  out.exitCode = resp.result().exit_code();
  out.signal = resp.result().signal();
  return out;
}

struct ExecStreamCall::Impl {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<drivers::ExecTaskStreamingRequest, drivers::ExecTaskStreamingResponse>>
      stream;
  std::mutex writeMu;  // one writer at a time
  std::mutex mu;
  std::condition_variable cv;
  ExecStreamOutcome outcome;
  std::thread reader;

  void readLoop() {
    drivers::ExecTaskStreamingResponse m;
    while (stream->Read(&m)) {
      std::lock_guard lock(mu);
      if (outcome.exited) ++outcome.messagesAfterExited;
      if (m.has_stdout()) {
        outcome.stdoutText += m.stdout().data();
        if (m.stdout().close()) outcome.stdoutClosed = true;
      }
      if (m.has_stderr()) {
        outcome.stderrText += m.stderr().data();
        if (m.stderr().close()) outcome.stderrClosed = true;
      }
      if (m.exited()) {
        outcome.exited = true;
        outcome.hasResult = m.has_result();
        outcome.exitCode = m.result().exit_code();
        outcome.signal = m.result().signal();
      }
      cv.notify_all();
    }
    // Read failed: the driver ended the stream. Never WritesDone first:
    // Nomad's client does not half-close.
    grpc::Status st = stream->Finish();
    std::lock_guard lock(mu);
    outcome.streamEnded = true;
    outcome.statusOk = st.ok();
    outcome.statusMessage = st.error_message();
    cv.notify_all();
  }

  Result<void> send(const drivers::ExecTaskStreamingRequest& m) {
    std::lock_guard lock(writeMu);
    if (!stream->Write(m)) return makeError(ErrorCode::kUnavailable, "ExecTaskStreaming: the stream is closed");
    return okResult();
  }
};

ExecStreamCall::ExecStreamCall(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ExecStreamCall::~ExecStreamCall() {
  if (!impl_) return;
  impl_->ctx.TryCancel();
  if (impl_->reader.joinable()) impl_->reader.join();
}

Result<void> ExecStreamCall::sendStdin(const std::string& data) {
  drivers::ExecTaskStreamingRequest m;
  m.mutable_stdin()->set_data(data);
  return impl_->send(m);
}

Result<void> ExecStreamCall::closeStdin() {
  drivers::ExecTaskStreamingRequest m;
  m.mutable_stdin()->set_close(true);
  return impl_->send(m);
}

Result<void> ExecStreamCall::resize(int height, int width) {
  drivers::ExecTaskStreamingRequest m;
  m.mutable_tty_size()->set_height(height);
  m.mutable_tty_size()->set_width(width);
  return impl_->send(m);
}

ExecStreamOutcome ExecStreamCall::waitFor(std::chrono::milliseconds timeout,
                                          const std::function<bool(const ExecStreamOutcome&)>& pred) {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait_for(lock, timeout, [&] { return pred(impl_->outcome) || impl_->outcome.streamEnded; });
  return impl_->outcome;
}

ExecStreamOutcome ExecStreamCall::waitEnd(std::chrono::milliseconds timeout) {
  return waitFor(timeout, [](const ExecStreamOutcome& o) { return o.streamEnded; });
}

void ExecStreamCall::cancel() { impl_->ctx.TryCancel(); }

Result<std::unique_ptr<ExecStreamCall>> startExecStream(PluginInstance& plugin, const std::string& taskId,
                                                        const std::vector<std::string>& command, bool tty) {
  auto impl = std::make_unique<ExecStreamCall::Impl>();
  impl->stream = plugin.driver().ExecTaskStreaming(&impl->ctx);
  drivers::ExecTaskStreamingRequest setup;
  setup.mutable_setup()->set_task_id(taskId);
  for (const auto& c : command) setup.mutable_setup()->add_command(c);
  setup.mutable_setup()->set_tty(tty);
  if (!impl->stream->Write(setup)) {
    grpc::Status st = impl->stream->Finish();
    return rpcError("ExecTaskStreaming", st);
  }
  ExecStreamCall::Impl* raw = impl.get();
  impl->reader = std::thread([raw] { raw->readLoop(); });
  return std::unique_ptr<ExecStreamCall>(new ExecStreamCall(std::move(impl)));
}

}  // namespace s2z::standin
