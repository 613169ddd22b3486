// The guest channel (guestlink/frame_codec.h): a byte stream of frames, each
// a 4-byte big-endian length and a serialized s2z.agent.v1.Frame, as the host
// reads it from the guest's virtio-serial port and the guest agent from the
// host. The input is used twice:
//  - as a stream, split by FrameDecoder, fed at once and in pieces of 1..64
//    bytes; every frame goes through ReliableSession::receive as both ends do;
//  - as one frame body: agent::v1::Frame::ParseFromArray (what next() does).
// Properties: no crash, leak or UB, no allocation beyond kMaxFrameBytes per
// frame; both feeds give the same frames and the same error; a decoded frame
// re-encodes (encodeFrame) to a stream that decodes to the same frame.
#include <google/protobuf/stubs/logging.h>

#include "fuzz/fuzz_check.h"
#include "guestlink/frame_codec.h"
#include "guestlink/reliable_session.h"

namespace {

using s2z::agent::v1::Frame;
using s2z::guestlink::FrameDecoder;

struct Decoded {
  std::vector<std::string> frames;  // each re-serialized
  std::string error;
};

template <typename Next>
Decoded split(std::string_view stream, Next nextPiece) {
  FrameDecoder decoder;
  s2z::guestlink::ReliableSession session;
  Decoded out;
  while (!stream.empty() && decoder.error().empty()) {
    size_t n = std::min(nextPiece(), stream.size());
    decoder.feed(stream.data(), n);
    stream.remove_prefix(n);
    while (auto frame = decoder.next()) {
      session.receive(*frame);
      if (frame->has_hello()) session.resendAfter(frame->ack());
      if (frame->has_hello_reply()) session.expectFrom(frame->hello_reply().next_seq());
      out.frames.push_back(frame->SerializeAsString());
    }
  }
  out.error = decoder.error();
  return out;
}

void expectReencodes(const Frame& frame) {
  std::string wire = s2z::guestlink::encodeFrame(frame);
  FrameDecoder decoder;
  decoder.feed(wire.data(), wire.size());
  auto again = decoder.next();
  FUZZ_CHECK(again.has_value(), "an encoded frame does not decode: %s", decoder.error().c_str());
  FUZZ_CHECK(again->SerializeAsString() == frame.SerializeAsString(), "frame changed");
  FUZZ_CHECK(!decoder.next().has_value(), "one encoded frame decoded as two");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // libprotobuf logs every string field with bad UTF-8; mutated input has
  // plenty, and the log would slow the run down to a crawl.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = s2z::fuzz::bytesOf(data, size);

  Decoded whole = split(bytes, [&] { return bytes.size() + 1; });
  s2z::fuzz::Splitter splitter(bytes);
  Decoded pieces = split(bytes, [&] { return splitter.next(); });
  FUZZ_CHECK(whole.frames == pieces.frames, "frames differ: %zu vs %zu", whole.frames.size(),
             pieces.frames.size());
  FUZZ_CHECK(whole.error == pieces.error, "error \"%s\" vs \"%s\"", whole.error.c_str(),
             pieces.error.c_str());

  Frame frame;
  if (size <= s2z::guestlink::kMaxFrameBytes &&
      frame.ParseFromArray(data, static_cast<int>(size))) {
    expectReencodes(frame);
    s2z::guestlink::ReliableSession session;
    session.receive(frame);
  }
  return 0;
}
