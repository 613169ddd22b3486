// The always-200 responder over real loopback sockets in a fresh netns.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "agent/health_responder.h"
#include "tests/agent/net_netns.h"

using namespace s2z;
using namespace s2z::agent;
using Clock = std::chrono::steady_clock;

namespace {

UniqueFd connectTo(const HealthResponder& r) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(s.valid());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(r.port());
  to.sin_addr.s_addr = r.addressBe();
  REQUIRE(::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  return s;
}

// Reads until EOF (the responder closes) or 2 s pass.
std::string readAll(int fd) {
  std::string out;
  char buf[1024];
  auto deadline = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

TEST_CASE("health responder: HTTP GET gets 200 with Connection: close, fast") {
  testing::ScopedNetns ns("resp");
  auto r = HealthResponder::start();
  REQUIRE_MESSAGE(r.ok(), testing::why(r));
  auto& resp = **r;
  CHECK(resp.port() != 0);
  CHECK(resp.addressBe() == htonl(INADDR_LOOPBACK));
  CHECK(resp.requestsServed() == 0);

  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    UniqueFd s = connectTo(resp);
    std::string req = "GET /healthz HTTP/1.1\r\nHost: 10.89.0.2:8080\r\nUser-Agent: Consul Health Check\r\n\r\n";
    REQUIRE(::send(s.get(), req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
    std::string reply = readAll(s.get());
    auto ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(reply.find("Connection: close\r\n") != std::string::npos);
    CHECK(ms < 50.0);
  }
  CHECK(resp.requestsServed() == 3);
}

TEST_CASE("health responder: plain TCP connects are accepted; half-closed requests answered") {
  testing::ScopedNetns ns("resp2");
  auto r = HealthResponder::start();
  REQUIRE(r.ok());
  auto& resp = **r;

  // A TCP check: connect, then close without sending anything.
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    UniqueFd s = connectTo(resp);
    CHECK(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() < 50.0);
  }
  CHECK(resp.requestsServed() == 0);

  // A client that shuts its write side right after a bare request line.
  UniqueFd s = connectTo(resp);
  std::string req = "GET / HTTP/1.0";
  REQUIRE(::send(s.get(), req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  ::shutdown(s.get(), SHUT_WR);
  CHECK(readAll(s.get()).rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(resp.requestsServed() == 1);

  // Many at once (a checker with several services) all get answers.
  std::vector<UniqueFd> socks;
  for (int i = 0; i < 20; ++i) socks.push_back(connectTo(resp));
  for (auto& c : socks) ::send(c.get(), "GET / HTTP/1.1\r\n\r\n", 18, 0);
  int ok = 0;
  for (auto& c : socks) ok += readAll(c.get()).rfind("HTTP/1.1 200 OK", 0) == 0;
  CHECK(ok == 20);
  CHECK(resp.requestsServed() == 21);
}

TEST_CASE("health responder: destruction stops listening") {
  testing::ScopedNetns ns("resp3");
  uint16_t port = 0;
  {
    auto r = HealthResponder::start();
    REQUIRE(r.ok());
    port = (*r)->port();
  }
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to);
  int err = errno;
  CHECK(rc < 0);
  CHECK(err == ECONNREFUSED);
}
