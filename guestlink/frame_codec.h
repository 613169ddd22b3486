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
// The port the guest agent listens on where its channel is virtio-vsock
// (Cloud Hypervisor); Kata's agent uses the same.
inline constexpr uint32_t kAgentVsockPort = 1024;

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
    consumed_ = 0;
    error_.clear();
  }

 private:
  // Bytes before consumed_ are decoded frames, dropped in bulk once they are
  // half the buffer: erasing each frame from the front would move the rest
  // of the buffer once per frame (quadratic in the frames of one read).
  std::string buffer_;
  size_t consumed_ = 0;
  std::string error_;
};

}  // namespace s2z::guestlink
