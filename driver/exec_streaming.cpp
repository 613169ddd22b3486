// ExecTaskStreaming: `nomad alloc exec` through a gRPC callback reactor.
//
// A synchronous handler cannot end the stream while the client keeps its
// side open (a Read blocked in another thread must finish before the
// handler returns), and Nomad's client never closes its side. The reactor
// can: Finish completes the pending read with ok = false.
//
// Threads: gRPC calls OnReadDone/OnWriteDone/OnCancel/OnDone; one worker
// thread starts the command (a sleeping task is woken first, which takes a
// while) and pumps its output into writes. mutex_ guards everything shared.
#include <spdlog/spdlog.h>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "driver/error_status.h"
#include "driver/exec_task.h"

namespace s2z::driver {
namespace {

using Request = pb::ExecTaskStreamingRequest;
using Response = pb::ExecTaskStreamingResponse;

class ExecStreamingReactor final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit ExecStreamingReactor(Plugin& plugin) : plugin_(plugin) { StartRead(&incoming_); }

  void OnReadDone(bool ok) override {
    std::lock_guard lock(mutex_);
    if (!ok) {
      // The client closed its side or went away: no more input can come.
      readsEnded_ = true;
      if (!setup_) return finishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "exec: no setup message"));
      pendingInput_.push_back(Input{Input::kClose, {}, 0, 0});
      applyInputLocked();
      return;
    }
    if (!setup_) {
      if (!incoming_.has_setup()) {
        return finishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "exec: the first message must carry setup"));
      }
      setup_ = incoming_.setup();
      worker_ = std::thread([this] { run(); });
    } else {
      takeInputLocked(incoming_);
      applyInputLocked();
    }
    if (!finishing_) StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    outbox_.pop_front();
    writing_ = false;
    if (!ok) {
      clientGone_ = true;  // the worker sees it and stops the command
      outbox_.clear();
    }
    writeNextLocked();
  }

  void OnCancel() override {
    std::lock_guard lock(mutex_);
    clientGone_ = true;
  }

  void OnDone() override {
    // The worker has called Finish and ends; should gRPC run OnDone on that
    // very thread, it cannot wait for itself.
    if (worker_.joinable()) {
      if (worker_.get_id() == std::this_thread::get_id()) {
        worker_.detach();
      } else {
        worker_.join();
      }
    }
    delete this;
  }

 private:
  struct Input {
    enum Kind { kData, kClose, kResize } kind;
    std::string data;
    uint32_t rows, columns;
  };

  void takeInputLocked(const Request& r) {
    if (r.has_stdin()) {
      if (!r.stdin().data().empty()) pendingInput_.push_back(Input{Input::kData, r.stdin().data(), 0, 0});
      if (r.stdin().close()) pendingInput_.push_back(Input{Input::kClose, {}, 0, 0});
    }
    if (r.has_tty_size()) {
      pendingInput_.push_back(Input{Input::kResize, {}, static_cast<uint32_t>(std::max(0, r.tty_size().height())),
                                    static_cast<uint32_t>(std::max(0, r.tty_size().width()))});
    }
    // Anything else is a heartbeat.
  }

  // Input before the command has started waits for it.
  void applyInputLocked() {
    if (!session_) return;
    for (Input& in : pendingInput_) {
      if (in.kind == Input::kData && !stdinClosed_) (void)session_->writeStdin(std::move(in.data));
      if (in.kind == Input::kClose && !stdinClosed_) {
        stdinClosed_ = true;
        (void)session_->closeStdin();
      }
      if (in.kind == Input::kResize && setup_->tty()) (void)session_->resize(in.rows, in.columns);
    }
    pendingInput_.clear();
  }

  void run() {
    const std::string id = setup_->task_id();
    auto handle = plugin_.tasks().get(id);
    if (!handle) return finish(grpc::Status(grpc::StatusCode::NOT_FOUND, fmt::format("exec: task {} not found", id)));
    if (setup_->command().empty()) {
      return finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, fmt::format("exec task {}: empty command", id)));
    }
    agent::ExecSpec spec;
    spec.argv.assign(setup_->command().begin(), setup_->command().end());
    spec.tty = setup_->tty();
    {
      // The latest size the client sent before the start, if any.
      std::lock_guard lock(mutex_);
      for (const Input& in : pendingInput_) {
        if (in.kind == Input::kResize) spec.rows = in.rows, spec.columns = in.columns;
      }
    }
    auto started = handle->instance()->exec(spec);
    if (!started.ok()) return finish(toStatus(started.error().wrap(fmt::format("exec task {}", id))));
    std::shared_ptr<agent::ExecSession> session(std::move(*started));
    {
      std::lock_guard lock(mutex_);
      session_ = session;
      applyInputLocked();
    }
    grpc::Status status = pump(*session);
    {
      std::lock_guard lock(mutex_);
      session_.reset();
    }
    session.reset();  // a command still running (client gone) is killed here
    finish(status);
  }

  grpc::Status pump(agent::ExecSession& session) {
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (clientGone_) return grpc::Status(grpc::StatusCode::CANCELLED, "exec: the client went away");
      }
      auto event = session.next(plugin_.options().cancelPollInterval);
      if (!event.ok()) {
        if (event.error().code == ErrorCode::kTimeout) continue;
        return toStatus(event.error().wrap("exec"));
      }
      Response out;
      switch (event->kind) {
        case agent::ExecEvent::Kind::kStdout:
          out.mutable_stdout()->set_data(std::move(event->data));
          out.mutable_stdout()->set_close(event->eof);
          break;
        case agent::ExecEvent::Kind::kStderr:
          out.mutable_stderr()->set_data(std::move(event->data));
          out.mutable_stderr()->set_close(event->eof);
          break;
        case agent::ExecEvent::Kind::kExited:
          out.set_exited(true);
          out.mutable_result()->set_exit_code(event->exitCode);
          out.mutable_result()->set_signal(event->signal);
          write(std::move(out));
          return grpc::Status::OK;
      }
      write(std::move(out));
    }
  }

  void write(Response response) {
    std::lock_guard lock(mutex_);
    if (clientGone_) return;
    outbox_.push_back(std::move(response));
    writeNextLocked();
  }

  // One write in flight at a time; the deque keeps the front's address.
  void writeNextLocked() {
    if (!writing_ && !outbox_.empty()) {
      writing_ = true;
      StartWrite(&outbox_.front());
      return;
    }
    if (!writing_ && outbox_.empty() && finishStatus_ && !finished_) {
      finished_ = true;
      Finish(*finishStatus_);
    }
  }

  // Ends the call once everything queued has been written.
  void finish(grpc::Status status) {
    std::lock_guard lock(mutex_);
    finishLocked(std::move(status));
  }
  void finishLocked(grpc::Status status) {
    if (finishStatus_) return;
    if (!status.ok()) spdlog::info("exec: {}", status.error_message());
    finishing_ = true;
    finishStatus_ = std::move(status);
    writeNextLocked();
  }

  Plugin& plugin_;
  std::thread worker_;
  Request incoming_;  // StartRead's target: touched only between reads

  std::mutex mutex_;
  std::optional<Request::Setup> setup_;  // set once, before the worker starts
  std::shared_ptr<agent::ExecSession> session_;
  std::vector<Input> pendingInput_;
  bool stdinClosed_ = false;
  bool readsEnded_ = false;
  bool clientGone_ = false;
  std::deque<Response> outbox_;
  bool writing_ = false;
  bool finishing_ = false;  // no more reads are started
  std::optional<grpc::Status> finishStatus_;
  bool finished_ = false;
};

}  // namespace

grpc::ServerBidiReactor<pb::ExecTaskStreamingRequest, pb::ExecTaskStreamingResponse>* startExecStreaming(
    Plugin& plugin, grpc::CallbackServerContext*) {
  return new ExecStreamingReactor(plugin);
}

}  // namespace s2z::driver
