// The Cloud Hypervisor API's HTTP framing (vmm/cloud_hypervisor/ch_http.h
// HttpParser): the first input byte picks request or response parsing (bit
// 0), the rest is the byte stream from the socket. It is parsed twice: fed
// at once, and fed in pieces of 1..64 bytes as reads from a socket arrive.
// Properties: no crash, leak or UB; errors are INVALID_ARGUMENT; both feeds
// give the same outcome and the same message (framing must not depend on
// where read() happened to split the stream).
#include "fuzz/fuzz_check.h"
#include "vmm/cloud_hypervisor/ch_http.h"

namespace {

using s2z::vmm::ch::HttpMessage;
using s2z::vmm::ch::HttpParser;

struct Outcome {
  bool ok = false;
  bool done = false;
  HttpMessage msg;
};

// Feeds the pieces, stopping at the first error (as ch_api_client does), then
// signals EOF unless the message already ended.
template <typename Next>
Outcome parse(HttpParser::Kind kind, std::string_view stream, Next nextPiece) {
  HttpParser parser(kind);
  Outcome out;
  while (!stream.empty() && !parser.done()) {
    size_t n = std::min(nextPiece(), stream.size());
    auto fed = parser.feed(stream.substr(0, n));
    s2z::fuzz::expectOkOrInvalid(fed, "feed");
    if (!fed.ok()) return out;
    stream.remove_prefix(n);
  }
  if (!parser.done()) {
    auto fin = parser.finish();
    s2z::fuzz::expectOkOrInvalid(fin, "finish");
    if (!fin.ok()) return out;
  }
  out.ok = true;
  out.done = parser.done();
  out.msg = parser.message();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto kind = (data[0] & 1) ? HttpParser::Kind::kRequest : HttpParser::Kind::kResponse;
  std::string_view stream = s2z::fuzz::bytesOf(data + 1, size - 1);

  Outcome whole = parse(kind, stream, [&] { return stream.size() + 1; });
  s2z::fuzz::Splitter split(stream);
  Outcome pieces = parse(kind, stream, [&] { return split.next(); });

  FUZZ_CHECK(whole.ok == pieces.ok, "whole feed %s, piecewise %s", whole.ok ? "ok" : "error",
             pieces.ok ? "ok" : "error");
  FUZZ_CHECK(whole.done == pieces.done, "done differs");
  FUZZ_CHECK(whole.msg.status == pieces.msg.status, "status %d vs %d", whole.msg.status,
             pieces.msg.status);
  FUZZ_CHECK(whole.msg.method == pieces.msg.method && whole.msg.target == pieces.msg.target &&
                 whole.msg.reason == pieces.msg.reason && whole.msg.headers == pieces.msg.headers,
             "start line or headers differ");
  FUZZ_CHECK(whole.msg.body == pieces.msg.body, "body differs (%zu vs %zu bytes)",
             whole.msg.body.size(), pieces.msg.body.size());
  return 0;
}
