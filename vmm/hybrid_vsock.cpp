#include "vmm/hybrid_vsock.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>

#include "common/unix_socket.h"

namespace s2z::vmm {
namespace {

using Clock = std::chrono::steady_clock;

// "OK " then decimal digits then "\n", and nothing else.
bool isOkLine(const std::string& line) {
  if (line.size() < 5 || line.compare(0, 3, "OK ") != 0 || line.back() != '\n') return false;
  for (size_t i = 3; i + 1 < line.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return false;
  }
  return true;
}

// Reads the VMM's answer a byte at a time: whatever follows its newline is
// the guest's and must stay in the socket for the channel's reader.
Result<std::string> readReplyLine(int fd, Clock::time_point deadline) {
  // "OK " and a u32 port: anything longer is not an answer.
  constexpr size_t kMaxLine = 16;
  std::string line;
  while (line.empty() || line.back() != '\n') {
    if (line.size() >= kMaxLine) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return systemError("poll");
    if (ready == 0) return makeError(ErrorCode::kTimeout, "no answer to CONNECT");
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET) n = 0;
    if (n < 0) return systemError("read the answer to CONNECT");
    if (n == 0) {
      return makeError(ErrorCode::kUnavailable,
                       "closed after CONNECT: nothing in the guest listens on the port (yet)");
    }
    line.push_back(c);
  }
  return line;
}

}  // namespace

Result<UniqueFd> connectHybridVsock(const std::filesystem::path& socket, uint32_t port,
                                    std::chrono::milliseconds replyTimeout) {
  const auto deadline = Clock::now() + replyTimeout;
  const std::string where = "vsock port " + std::to_string(port) + " via " + socket.string();
  auto fd = connectUnix(socket);
  if (!fd.ok()) {
    Error e = fd.error();
    if (e.code == ErrorCode::kSystem) e.code = ErrorCode::kUnavailable;  // no VMM listening yet
    return e.wrap(where);
  }
  const std::string request = "CONNECT " + std::to_string(port) + "\n";
  if (::send(fd->get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return makeError(ErrorCode::kUnavailable, where + ": send CONNECT: " + std::strerror(errno));
  }
  auto line = readReplyLine(fd->get(), deadline);
  if (!line.ok()) return line.error().wrap(where);
  if (!isOkLine(*line)) {
    std::string shown = line->back() == '\n' ? line->substr(0, line->size() - 1) : *line;
    return makeError(ErrorCode::kVmmError, where + ": unexpected answer to CONNECT: \"" + shown + "\"");
  }
  return std::move(*fd);
}

}  // namespace s2z::vmm
