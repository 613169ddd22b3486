// Minimal HTTP/1.1 framing for the Cloud Hypervisor API socket: formatting a
// request and incrementally parsing a message (request or response) with a
// Content-Length, chunked, or read-to-EOF body. Pure: no I/O, unit-tested.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"

namespace s2z::vmm::ch {

// The API lives under this prefix on the unix socket (OpenAPI "servers").
inline constexpr std::string_view kApiBase = "/api/v1/";

// "PUT /api/v1/vm.boot HTTP/1.1" plus Host, Accept and, when body is not
// empty, Content-Type: application/json and Content-Length.
std::string formatRequest(std::string_view method, std::string_view endpoint,
                          std::string_view body);

struct HttpMessage {
  // Request: method and target; response: status and reason.
  std::string method;
  std::string target;
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// Feeds bytes as they arrive; done() once the whole message is in.
class HttpParser {
 public:
  enum class Kind { kRequest, kResponse };
  explicit HttpParser(Kind kind) : kind_(kind) {}

  // Appends data. kInvalidArgument on malformed framing (bad start line,
  // header, chunk size, or a message over kMaxMessage bytes).
  Result<void> feed(std::string_view data);
  // The peer closed the connection: a response without a length ends here.
  // kInvalidArgument when the message is incomplete.
  Result<void> finish();

  bool done() const { return state_ == State::kDone; }
  const HttpMessage& message() const { return msg_; }

  static constexpr size_t kMaxMessage = 64 * 1024 * 1024;

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkTrailer, kToEof, kDone };
  Result<void> parseHead(std::string_view head);
  Result<void> step(bool& progressed);

  Kind kind_;
  State state_ = State::kHead;
  std::string buf_;
  size_t remaining_ = 0;
  HttpMessage msg_;
};

}  // namespace s2z::vmm::ch
