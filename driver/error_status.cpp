#include "driver/error_status.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "hashicorp/nomad/plugins/shared/structs/proto/recoverable_error.pb.h"

namespace s2z::driver {
namespace {

using google::protobuf::internal::WireFormatLite;

// google.rpc.Status field numbers.
constexpr int kStatusCode = 1;
constexpr int kStatusMessage = 2;
constexpr int kStatusDetails = 3;

}  // namespace

grpc::StatusCode grpcCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::kAlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case ErrorCode::kFailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case ErrorCode::kTimeout: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ErrorCode::kCancelled: return grpc::StatusCode::CANCELLED;
    case ErrorCode::kUnimplemented: return grpc::StatusCode::UNIMPLEMENTED;
    case ErrorCode::kDataLoss: return grpc::StatusCode::DATA_LOSS;
    case ErrorCode::kInternal:
    case ErrorCode::kVmmError:
    case ErrorCode::kSystem: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::UNKNOWN;
}

grpc::Status toStatus(const Error& error) {
  return grpc::Status(grpcCode(error.code), error.describe());
}

std::string encodeRecoverableDetails(grpc::StatusCode code, std::string_view message,
                                     bool recoverable) {
  ::hashicorp::nomad::plugins::shared::structs::RecoverableError detail;
  detail.set_recoverable(recoverable);
  google::protobuf::Any any;
  any.set_type_url(kRecoverableErrorTypeUrl);
  any.set_value(detail.SerializeAsString());
  std::string anyBytes = any.SerializeAsString();

  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    WireFormatLite::WriteInt32(kStatusCode, static_cast<int32_t>(code), &coded);
    WireFormatLite::WriteString(kStatusMessage, std::string(message), &coded);
    WireFormatLite::WriteBytes(kStatusDetails, anyBytes, &coded);
  }
  return out;
}

grpc::Status recoverableStatus(const Error& error, bool recoverable) {
  std::string message = error.describe();
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, message,
                      encodeRecoverableDetails(grpc::StatusCode::FAILED_PRECONDITION, message,
                                               recoverable));
}

std::optional<bool> decodeRecoverableDetails(std::string_view details) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(details.data()),
                                            static_cast<int>(details.size()));
  while (true) {
    uint32_t tag = in.ReadTag();
    if (tag == 0) return std::nullopt;
    if (WireFormatLite::GetTagFieldNumber(tag) == kStatusDetails &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      std::string bytes;
      if (!WireFormatLite::ReadBytes(&in, &bytes)) return std::nullopt;
      google::protobuf::Any any;
      if (!any.ParseFromString(bytes) || any.type_url() != kRecoverableErrorTypeUrl) {
        return std::nullopt;
      }
      ::hashicorp::nomad::plugins::shared::structs::RecoverableError detail;
      if (!detail.ParseFromString(any.value())) return std::nullopt;
      return detail.recoverable();  // only details[0] counts, as in the client
    }
    if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
  }
}

}  // namespace s2z::driver
