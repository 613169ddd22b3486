#include <doctest/doctest.h>

#include "guestlink/frame_codec.h"

using namespace s2z::guestlink;
namespace pb = s2z::agent::v1;

namespace {

pb::Frame startFrame(uint64_t seq, const std::string& arg) {
  pb::Frame f;
  f.set_seq(seq);
  f.mutable_request()->set_id(seq);
  f.mutable_request()->mutable_start_workload()->add_argv(arg);
  return f;
}

}  // namespace

TEST_CASE("frames split anywhere in the byte stream come out whole and in order") {
  std::string stream = encodeFrame(startFrame(1, "sh")) + encodeFrame(startFrame(2, std::string(5000, 'x')));
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{4096}, stream.size()}) {
    FrameDecoder d;
    std::vector<pb::Frame> out;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      d.feed(stream.data() + at, std::min(chunk, stream.size() - at));
      while (auto f = d.next()) out.push_back(*f);
    }
    REQUIRE(out.size() == 2);
    CHECK(out[0].request().start_workload().argv(0) == "sh");
    CHECK(out[1].seq() == 2);
    CHECK(out[1].request().start_workload().argv(0).size() == 5000);
    CHECK(d.error().empty());
  }
}

TEST_CASE("a length beyond the limit stops decoding instead of allocating it") {
  FrameDecoder d;
  const char huge[] = {0x7f, 0x00, 0x00, 0x00, 0x01};
  d.feed(huge, sizeof huge);
  CHECK_FALSE(d.next());
  CHECK(d.error().find("exceeds the limit") != std::string::npos);
  // Stays stopped: the stream is out of sync.
  std::string good = encodeFrame(startFrame(1, "sh"));
  d.feed(good.data(), good.size());
  CHECK_FALSE(d.next());
  d.reset();
  d.feed(good.data(), good.size());
  CHECK(d.next());
}

TEST_CASE("bytes that are not a Frame are an error, not a crash") {
  FrameDecoder d;
  const char junk[] = {0x00, 0x00, 0x00, 0x03, static_cast<char>(0xff), static_cast<char>(0xff),
                       static_cast<char>(0xff)};
  d.feed(junk, sizeof junk);
  CHECK_FALSE(d.next());
  CHECK(d.error() == "frame does not parse");
}

TEST_CASE("many small frames in one read all come out, with partial ones in between") {
  // Decoded frames are dropped from the buffer in bulk, not one by one.
  std::string stream;
  for (uint64_t i = 1; i <= 5000; ++i) stream += encodeFrame(startFrame(i, "a"));
  FrameDecoder d;
  uint64_t next = 1;
  for (size_t at = 0; at < stream.size(); at += 16384) {
    d.feed(stream.data() + at, std::min<size_t>(16384, stream.size() - at));
    while (auto f = d.next()) {
      REQUIRE(f->seq() == next);
      ++next;
    }
  }
  CHECK(next == 5001);
  CHECK(d.error().empty());
}
