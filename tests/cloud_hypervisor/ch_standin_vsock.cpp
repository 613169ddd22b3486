#include "tests/cloud_hypervisor/ch_standin_vsock.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace s2z::tests::ch {

Result<std::unique_ptr<StandinVsock>> StandinVsock::bind(const std::filesystem::path& socket) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return systemError("vsock: socket");
  sockaddr_un addr{};
  if (socket.string().size() >= sizeof addr.sun_path) {
    return makeError(ErrorCode::kInvalidArgument, "vsock: socket path too long: " + socket.string());
  }
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return systemError("Error creating vsock device: bind " + socket.string());
  }
  if (::listen(fd.get(), 8) != 0) return systemError("vsock: listen");
  return std::unique_ptr<StandinVsock>(new StandinVsock(std::move(fd)));
}

StandinVsock::StandinVsock(UniqueFd listener) : listener_(std::move(listener)) {
  thread_ = std::thread([this] { serve(); });
}

StandinVsock::~StandinVsock() {
  stopping_ = true;
  ::shutdown(listener_.get(), SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
}

void StandinVsock::serve() {
  while (!stopping_) {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;  // shut down
    // The VMM's read of "CONNECT <port>\n", a byte at a time (at most 32).
    std::string line;
    char c = 0;
    while (line.size() < 32) {
      pollfd p{conn.get(), POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0 || ::read(conn.get(), &c, 1) != 1) break;
      line.push_back(c);
      if (c == '\n') break;
    }
    // No guest listens on any port: the stream is closed without "OK".
  }
}

}  // namespace s2z::tests::ch
