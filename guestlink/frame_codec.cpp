#include "guestlink/frame_codec.h"

namespace s2z::guestlink {

std::string encodeFrame(const agent::v1::Frame& frame) {
  std::string body = frame.SerializeAsString();
  auto n = static_cast<uint32_t>(body.size());
  std::string out;
  out.reserve(4 + body.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out += body;
  return out;
}

std::optional<agent::v1::Frame> FrameDecoder::next() {
  if (!error_.empty()) return std::nullopt;
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  const size_t avail = buffer_.size() - consumed_;
  if (avail < 4) return std::nullopt;
  const char* at = buffer_.data() + consumed_;
  auto byte = [at](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(at[i])); };
  uint32_t n = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
  if (n > kMaxFrameBytes) {
    error_ = "frame of " + std::to_string(n) + " bytes exceeds the limit";
    return std::nullopt;
  }
  if (avail < 4 + size_t{n}) return std::nullopt;
  agent::v1::Frame frame;
  if (!frame.ParseFromArray(at + 4, static_cast<int>(n))) {
    error_ = "frame does not parse";
    return std::nullopt;
  }
  consumed_ += 4 + size_t{n};
  return frame;
}

}  // namespace s2z::guestlink
