// Framing of the guest channel: a 4-byte big-endian length, then one
// serialized s2z.agent.v1.Frame. A byte stream (virtio-serial port, socket)
// carries frames back to back; FrameDecoder splits it again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "s2z/agent/v1/agent.pb.h"

namespace s2z::guestlink {

// Larger frames are refused on both ends: a corrupt length must not make a
// peer allocate gigabytes. Every message we send is far below this.
inline constexpr uint32_t kMaxFrameBytes = 1 << 20;
inline constexpr uint32_t kProtocolVersion = 1;

std::string encodeFrame(const agent::v1::Frame& frame);

class FrameDecoder {
 public:
  void feed(const char* data, size_t size) { buffer_.append(data, size); }
  // The next complete frame; nullopt when more bytes are needed. A length
  // over kMaxFrameBytes or bytes that do not parse set error() and stop
  // decoding: the stream is no longer in sync.
  std::optional<agent::v1::Frame> next();
  const std::string& error() const { return error_; }
  // Drops buffered bytes (a new connection starts a new stream).
  void reset() {
    buffer_.clear();
    error_.clear();
  }

 private:
  std::string buffer_;
  std::string error_;
};

}  // namespace s2z::guestlink
