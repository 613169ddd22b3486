// Exec in a task (guest agent tasks): ExecTask, which Nomad's script checks
// call, and ExecTaskStreaming, which `nomad alloc exec` and the UI's terminal
// use (protocol doc §3.5, §3.8).
//
// - ExecTask on a sleeping task runs nothing and answers exit code 0 (a
//   passing check, as the health responder answers HTTP and TCP checks),
//   unless scale_to_zero { script_checks = "wake" }. On timeout the command is
//   SIGKILLed and the call fails with DEADLINE_EXCEEDED, which the script
//   check reports as timed out. Output is kept up to kMaxExecOutputBytes per
//   stream (Nomad keeps far less of a check's output).
// - ExecTaskStreaming wakes a sleeping task. The stream ends with OK right
//   after the `exited` message even if the client never closes its side
//   (Nomad's client does not: it reads until the driver ends the stream).
//   A client that goes away kills the command. Reading ends stdin.
#pragma once

#include <grpcpp/grpcpp.h>

#include "driver/plugin.h"
#include "driver/proto_types.h"

namespace s2z::driver {

inline constexpr size_t kMaxExecOutputBytes = 1 << 20;

grpc::Status execTask(Plugin& plugin, grpc::ServerContext* ctx, const pb::ExecTaskRequest& request,
                      pb::ExecTaskResponse* response);

// The reactor of one ExecTaskStreaming call; deletes itself when done.
grpc::ServerBidiReactor<pb::ExecTaskStreamingRequest, pb::ExecTaskStreamingResponse>* startExecStreaming(
    Plugin& plugin, grpc::CallbackServerContext* ctx);

}  // namespace s2z::driver
