// The Nomad client's exec calls, as it really makes them:
//
// - ExecTask is how a script check runs (client/allocrunner/taskrunner,
//   contextExec): the check's timeout goes in the request and also bounds
//   the wait; a call still running at the timeout is a timed-out check.
// - ExecTaskStreaming is `nomad alloc exec` (plugins/drivers/client.go,
//   ExecTaskStreamingRaw): the first message is setup, then stdin chunks,
//   stdin.close and tty_size as the user's terminal produces them. The
//   client never closes its send side; it reads until the driver ends the
//   stream, and a driver that sent `exited` but keeps the stream open keeps
//   the user's `nomad alloc exec` hanging.
// Plain types only: no generated protobuf headers leak from here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

namespace s2z::standin {

class PluginInstance;

// What a script check learns from ExecTask.
struct ExecTaskOutcome {
  bool timedOut = false;  // no answer within the timeout, or DEADLINE_EXCEEDED
  std::string stdoutText, stderrText;
  int exitCode = 0;
  int signal = 0;
};

// What `nomad alloc exec` saw, so far or in the end.
struct ExecStreamOutcome {
  std::string stdoutText, stderrText;
  bool stdoutClosed = false, stderrClosed = false;  // close=true seen on that channel
  bool exited = false;     // a message with exited=true came
  bool hasResult = false;  // ...carrying result
  int exitCode = 0;
  int signal = 0;
  bool streamEnded = false;  // the driver ended the stream (status below)
  bool statusOk = false;
  std::string statusMessage;
  int messagesAfterExited = 0;  // the protocol wants none
};

// One ExecTaskStreaming call in flight.
class ExecStreamCall {
 public:
  ~ExecStreamCall();  // cancels the call if it still runs
  ExecStreamCall(const ExecStreamCall&) = delete;
  ExecStreamCall& operator=(const ExecStreamCall&) = delete;

  Result<void> sendStdin(const std::string& data);
  Result<void> closeStdin();
  Result<void> resize(int height, int width);
  // Blocks until pred(outcome) holds or the timeout passes; returns the
  // outcome either way.
  ExecStreamOutcome waitFor(std::chrono::milliseconds timeout,
                            const std::function<bool(const ExecStreamOutcome&)>& pred);
  // Until the driver ends the stream.
  ExecStreamOutcome waitEnd(std::chrono::milliseconds timeout);
  // The user's terminal closes: the call is cancelled.
  void cancel();

 private:
  friend Result<std::unique_ptr<ExecStreamCall>> startExecStream(PluginInstance&, const std::string&,
                                                                 const std::vector<std::string>&, bool);
  struct Impl;
  explicit ExecStreamCall(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

Result<ExecTaskOutcome> runExecTask(PluginInstance& plugin, const std::string& taskId,
                                    const std::vector<std::string>& command, std::chrono::milliseconds timeout);

Result<std::unique_ptr<ExecStreamCall>> startExecStream(PluginInstance& plugin, const std::string& taskId,
                                                        const std::vector<std::string>& command, bool tty);

}  // namespace s2z::standin
