#include "standin/rpc_error.h"

namespace s2z::standin {

namespace {

const char* codeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

ErrorCode toErrorCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT: return ErrorCode::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND: return ErrorCode::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS: return ErrorCode::kAlreadyExists;
    case grpc::StatusCode::FAILED_PRECONDITION: return ErrorCode::kFailedPrecondition;
    case grpc::StatusCode::UNAVAILABLE: return ErrorCode::kUnavailable;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return ErrorCode::kTimeout;
    case grpc::StatusCode::CANCELLED: return ErrorCode::kCancelled;
    case grpc::StatusCode::UNIMPLEMENTED: return ErrorCode::kUnimplemented;
    case grpc::StatusCode::DATA_LOSS: return ErrorCode::kDataLoss;
    default: return ErrorCode::kInternal;
  }
}

}  // namespace

std::string statusText(const grpc::Status& status) {
  return std::string(codeName(status.error_code())) + ": " + status.error_message();
}

Error rpcError(const std::string& rpc, const grpc::Status& status) {
  return makeError(toErrorCode(status.error_code()), rpc + ": " + statusText(status));
}

}  // namespace s2z::standin

#include <google/protobuf/any.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "hashicorp/nomad/plugins/shared/structs/proto/recoverable_error.pb.h"

namespace s2z::standin {

std::optional<bool> recoverableDetail(const grpc::Status& status) {
  using google::protobuf::internal::WireFormatLite;
  const std::string& bytes = status.error_details();
  if (bytes.empty()) return std::nullopt;
  // google.rpc.Status: field 3 is `repeated Any details`; only details[0] counts.
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) != 3 ||
        WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
      continue;
    }
    std::string anyBytes;
    uint32_t len = 0;
    if (!in.ReadVarint32(&len) || !in.ReadString(&anyBytes, static_cast<int>(len))) return std::nullopt;
    google::protobuf::Any any;
    if (!any.ParseFromString(anyBytes)) return std::nullopt;
    if (any.type_url() !=
        "type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError") {
      return std::nullopt;
    }
    hashicorp::nomad::plugins::shared::structs::RecoverableError detail;
    if (!detail.ParseFromString(any.value())) return std::nullopt;
    return detail.recoverable();
  }
  return std::nullopt;
}

}  // namespace s2z::standin
