// The one place where our ErrorCode becomes a gRPC status (the message is
// kept whole), and where StartTask's "recoverable" detail is built: a
// serialized google.rpc.Status whose details[0] is an Any holding
// hashicorp.nomad.plugins.shared.structs.RecoverableError (protocol doc §3.6).
#pragma once

#include <grpcpp/support/status.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace s2z::driver {

inline constexpr const char* kRecoverableErrorTypeUrl =
    "type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError";

grpc::StatusCode grpcCode(ErrorCode code);

// Maps the error's code and keeps its full text (with errno) as message.
grpc::Status toStatus(const Error& error);

// FAILED_PRECONDITION carrying RecoverableError{recoverable} in the status
// details, so the Nomad client restarts the task per its restart policy.
grpc::Status recoverableStatus(const Error& error, bool recoverable = true);

// Serializes google.rpc.Status{code, message, details=[Any(RecoverableError)]}.
// Encoded by hand: Debian ships no google/rpc/status.proto, and a second
// definition of that message elsewhere in a binary would clash.
std::string encodeRecoverableDetails(grpc::StatusCode code, std::string_view message,
                                     bool recoverable);

// Reads serialized google.rpc.Status details: the recoverable flag when
// details[0] is a RecoverableError Any, nullopt otherwise (or if malformed).
std::optional<bool> decodeRecoverableDetails(std::string_view details);

}  // namespace s2z::driver
