// Turns a failed gRPC status into our Error, keeping the status code name and
// message so tests can assert on both ("StartTask: INVALID_ARGUMENT: ...").
#pragma once

#include <optional>
#include <string>

#include <grpcpp/support/status.h>

#include "common/result.h"

namespace s2z::standin {

// "CODE: message" (e.g. "UNAVAILABLE: Socket closed").
std::string statusText(const grpc::Status& status);

// Error whose message is "<rpc>: <CODE>: <message>" and whose code follows the
// gRPC code (INVALID_ARGUMENT -> kInvalidArgument, UNAVAILABLE -> kUnavailable ...).
Error rpcError(const std::string& rpc, const grpc::Status& status);

}  // namespace s2z::standin

namespace s2z::standin {

// The RecoverableError detail of a StartTask error status
// (google.rpc.Status.details[0] of type ...shared.structs.RecoverableError),
// or nullopt if the status carries none — then the client treats the error
// as unrecoverable (docs/nomad-plugin-protocol.md §3.6).
std::optional<bool> recoverableDetail(const grpc::Status& status);

}  // namespace s2z::standin
