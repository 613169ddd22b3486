#include "tests/bpf/http_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstring>

namespace s2z::bpf::test {
namespace {

constexpr char kReply[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";

void setTimeouts(int fd) {
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

HttpServer::HttpServer(const char* addr, uint16_t port) {
  listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(listener_.valid());
  int one = 1;
  ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  REQUIRE(inet_pton(AF_INET, addr, &sa.sin_addr) == 1);
  REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  REQUIRE(::listen(listener_.get(), 64) == 0);
  socklen_t len = sizeof(sa);
  REQUIRE(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  port_ = ntohs(sa.sin_port);
  thread_ = std::thread([this] { serve(); });
}

HttpServer::~HttpServer() {
  stop_ = true;
  thread_.join();
}

void HttpServer::serve() {
  while (!stop_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 50) != 1) continue;
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    ++accepted_;
    setTimeouts(conn.get());
    std::string request;
    char buf[512];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(conn.get(), buf, sizeof(buf));
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    (void)!::write(conn.get(), kReply, sizeof(kReply) - 1);
    // Wait for the client's FIN, so the client closes first (TIME_WAIT is
    // on the client side, as with a real health checker).
    while (::read(conn.get(), buf, sizeof(buf)) > 0) {
    }
  }
}

int httpGet(const std::string& addr, uint16_t port) {
  const bool v6 = addr.find(':') != std::string::npos;
  UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return 1;
  setTimeouts(fd.get());
  int rc;
  if (v6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    if (inet_pton(AF_INET6, addr.c_str(), &sa.sin6_addr) != 1) return 1;
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) return 1;
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  if (rc != 0) return 2;
  const char request[] = "GET / HTTP/1.0\r\nHost: vm\r\n\r\n";
  if (::write(fd.get(), request, sizeof(request) - 1) != sizeof(request) - 1) return 3;
  std::string reply;
  char buf[512];
  while (reply.find("\r\n\r\nok") == std::string::npos) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  if (reply.rfind("HTTP/1.0 200", 0) != 0) return 4;
  ::shutdown(fd.get(), SHUT_WR);
  while (::read(fd.get(), buf, sizeof(buf)) > 0) {  // until the server's FIN
  }
  return 0;
}

}  // namespace s2z::bpf::test
