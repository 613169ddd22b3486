#include <doctest/doctest.h>

#include "vmm/cloud_hypervisor/ch_http.h"

using namespace s2z;
using namespace s2z::vmm::ch;

namespace {
// Feeds text one byte at a time: framing must not depend on read boundaries.
HttpParser feedBytewise(HttpParser::Kind kind, const std::string& text) {
  HttpParser p(kind);
  for (char c : text) REQUIRE(p.feed(std::string_view(&c, 1)).ok());
  return p;
}
}  // namespace

TEST_CASE("formatRequest writes the request line, headers and body") {
  CHECK(formatRequest("PUT", "vm.boot", "") ==
        "PUT /api/v1/vm.boot HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
  std::string body = R"({"destination_url":"file:///s"})";
  std::string req = formatRequest("PUT", "vm.snapshot", body);
  CHECK(req.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(req.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
  CHECK(req.substr(req.size() - body.size()) == body);

  auto parsed = feedBytewise(HttpParser::Kind::kRequest, req);
  REQUIRE(parsed.done());
  CHECK(parsed.message().method == "PUT");
  CHECK(parsed.message().target == "/api/v1/vm.snapshot");
  CHECK(parsed.message().body == body);
}

TEST_CASE("response with Content-Length, split anywhere") {
  auto p = feedBytewise(HttpParser::Kind::kResponse,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "content-length: 17\r\n\r\n{\"version\":\"v45\"}");
  REQUIRE(p.done());
  CHECK(p.message().status == 200);
  CHECK(p.message().reason == "OK");
  CHECK(p.message().headers.at("content-type") == "application/json");
  CHECK(p.message().body == "{\"version\":\"v45\"}");
}

TEST_CASE("chunked response bodies are reassembled") {
  auto p = feedBytewise(HttpParser::Kind::kResponse,
                        "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "6\r\nError \r\nA;ext=1\r\nsnapshot: \r\n4\r\ndisk\r\n0\r\n\r\n");
  REQUIRE(p.done());
  CHECK(p.message().status == 500);
  CHECK(p.message().body == "Error snapshot: disk");
}

TEST_CASE("204 has no body; a response without length ends at EOF") {
  HttpParser p(HttpParser::Kind::kResponse);
  REQUIRE(p.feed("HTTP/1.1 204 No Content\r\n\r\n").ok());
  CHECK(p.done());
  CHECK(p.message().body.empty());

  HttpParser eof(HttpParser::Kind::kResponse);
  REQUIRE(eof.feed("HTTP/1.0 500 Internal Server Error\r\n\r\nVM is not paused").ok());
  CHECK_FALSE(eof.done());
  REQUIRE(eof.finish().ok());
  CHECK(eof.message().body == "VM is not paused");
}

TEST_CASE("malformed or truncated messages are errors") {
  HttpParser bad(HttpParser::Kind::kResponse);
  CHECK_FALSE(bad.feed("SSH-2.0-OpenSSH\r\n\r\n").ok());

  HttpParser badLength(HttpParser::Kind::kResponse);
  CHECK_FALSE(badLength.feed("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").ok());

  HttpParser badChunk(HttpParser::Kind::kResponse);
  CHECK_FALSE(
      badChunk.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").ok());

  HttpParser truncated(HttpParser::Kind::kResponse);
  REQUIRE(truncated.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").ok());
  CHECK_FALSE(truncated.done());
  CHECK_FALSE(truncated.finish().ok());
}

TEST_CASE("a chunk size that would wrap the body limit check is refused") {
  // 2^64 - 1: body.size() + size used to wrap to a small number and pass, so
  // the body could grow without the kMaxMessage limit.
  HttpParser huge(HttpParser::Kind::kResponse);
  auto fed = huge.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\nffffffffffffffff\r\n");
  REQUIRE_FALSE(fed.ok());
  CHECK(fed.error().message.find("body too large") != std::string::npos);
}

TEST_CASE("a status code is three digits") {
  HttpParser negative(HttpParser::Kind::kResponse);
  CHECK_FALSE(negative.feed("HTTP/1.1 -20 Odd\r\n\r\n").ok());
  HttpParser plus(HttpParser::Kind::kResponse);
  CHECK_FALSE(plus.feed("HTTP/1.1 +20 Odd\r\n\r\n").ok());
}
