#include "vmm/cloud_hypervisor/ch_http.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace s2z::vmm::ch {
namespace {

Error badFraming(const std::string& what) {
  return makeError(ErrorCode::kInvalidArgument, "malformed HTTP message: " + what);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string formatRequest(std::string_view method, std::string_view endpoint,
                          std::string_view body) {
  std::string req;
  req.reserve(128 + body.size());
  req.append(method).append(" ").append(kApiBase).append(endpoint).append(" HTTP/1.1\r\n");
  req.append("Host: localhost\r\nAccept: */*\r\n");
  if (!body.empty()) {
    req.append("Content-Type: application/json\r\n");
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  req.append("\r\n").append(body);
  return req;
}

Result<void> HttpParser::parseHead(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view start = head.substr(0, eol);
  if (kind_ == Kind::kResponse) {
    // "HTTP/1.1 204 No Content"
    if (start.substr(0, 5) != "HTTP/") return badFraming("status line \"" + std::string(start) + "\"");
    size_t sp = start.find(' ');
    if (sp == std::string_view::npos || start.size() < sp + 4) {
      return badFraming("status line \"" + std::string(start) + "\"");
    }
    auto code = start.substr(sp + 1, 3);
    // Three digits (from_chars alone would take "-12").
    if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return badFraming("status code");
    }
    auto [p, ec] = std::from_chars(code.data(), code.data() + code.size(), msg_.status);
    if (ec != std::errc() || p != code.data() + 3) return badFraming("status code");
    msg_.reason = std::string(trim(start.substr(std::min(start.size(), sp + 4))));
  } else {
    size_t sp1 = start.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : start.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || start.substr(sp2 + 1, 5) != "HTTP/") {
      return badFraming("request line \"" + std::string(start) + "\"");
    }
    msg_.method = std::string(start.substr(0, sp1));
    msg_.target = std::string(start.substr(sp1 + 1, sp2 - sp1 - 1));
  }
  std::string_view rest = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view line = rest.substr(0, e);
    rest = e == std::string_view::npos ? "" : rest.substr(e + 2);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return badFraming("header \"" + std::string(line) + "\"");
    }
    msg_.headers[lower(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
  }

  auto te = msg_.headers.find("transfer-encoding");
  auto cl = msg_.headers.find("content-length");
  if (te != msg_.headers.end() && lower(te->second).find("chunked") != std::string::npos) {
    state_ = State::kChunkSize;
  } else if (cl != msg_.headers.end()) {
    const std::string& v = cl->second;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), remaining_);
    if (ec != std::errc() || p != v.data() + v.size()) return badFraming("Content-Length " + v);
    if (remaining_ > kMaxMessage) return badFraming("body too large");
    state_ = remaining_ == 0 ? State::kDone : State::kBody;
  } else if (kind_ == Kind::kRequest || msg_.status == 204 || msg_.status == 304 ||
             msg_.status / 100 == 1) {
    // Requests without a length have no body; so do these responses.
    state_ = State::kDone;
  } else {
    state_ = State::kToEof;
  }
  return okResult();
}

Result<void> HttpParser::step(bool& progressed) {
  progressed = false;
  switch (state_) {
    case State::kHead: {
      size_t end = buf_.find("\r\n\r\n");
      if (end == std::string::npos) return okResult();
      std::string head = buf_.substr(0, end + 2);
      buf_.erase(0, end + 4);
      progressed = true;
      return parseHead(head);
    }
    case State::kBody: {
      size_t n = std::min(remaining_, buf_.size());
      msg_.body.append(buf_, 0, n);
      buf_.erase(0, n);
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::kDone;
      progressed = n > 0;
      return okResult();
    }
    case State::kChunkSize: {
      size_t eol = buf_.find("\r\n");
      if (eol == std::string::npos) return okResult();
      std::string_view line(buf_.data(), eol);
      line = line.substr(0, line.find(';'));  // chunk extensions are ignored
      line = trim(line);
      size_t size = 0;
      auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
      if (ec != std::errc() || p != line.data() + line.size()) return badFraming("chunk size");
      // Compared without the sum: a size near SIZE_MAX would wrap it and let
      // the body grow past kMaxMessage.
      if (size > kMaxMessage - msg_.body.size()) return badFraming("body too large");
      buf_.erase(0, eol + 2);
      remaining_ = size;
      state_ = size == 0 ? State::kChunkTrailer : State::kChunkData;
      progressed = true;
      return okResult();
    }
    case State::kChunkData: {
      if (remaining_ > 0) {
        size_t n = std::min(remaining_, buf_.size());
        msg_.body.append(buf_, 0, n);
        buf_.erase(0, n);
        remaining_ -= n;
        progressed = n > 0;
        return okResult();
      }
      if (buf_.size() < 2) return okResult();
      if (buf_.compare(0, 2, "\r\n") != 0) return badFraming("chunk terminator");
      buf_.erase(0, 2);
      state_ = State::kChunkSize;
      progressed = true;
      return okResult();
    }
    case State::kChunkTrailer: {
      size_t eol = buf_.find("\r\n");
      if (eol == std::string::npos) return okResult();
      buf_.erase(0, eol + 2);
      if (eol == 0) state_ = State::kDone;  // empty line ends the trailers
      progressed = true;
      return okResult();
    }
    case State::kToEof:
      msg_.body.append(buf_);
      progressed = !buf_.empty();
      buf_.clear();
      if (msg_.body.size() > kMaxMessage) return badFraming("body too large");
      return okResult();
    case State::kDone:
      return okResult();
  }
  return okResult();
}

Result<void> HttpParser::feed(std::string_view data) {
  if (buf_.size() + data.size() > kMaxMessage) return badFraming("message too large");
  buf_.append(data);
  bool progressed = true;
  while (progressed && state_ != State::kDone) {
    S2Z_TRY(step(progressed), "parse");
  }
  return okResult();
}

Result<void> HttpParser::finish() {
  if (state_ == State::kToEof) state_ = State::kDone;
  if (state_ != State::kDone) return badFraming("connection closed mid-message");
  return okResult();
}

}  // namespace s2z::vmm::ch
