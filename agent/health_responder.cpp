#include "agent/health_responder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <spdlog/spdlog.h>
#include <string>
#include <string_view>

namespace s2z::agent {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 3\r\n"
    "Connection: close\r\n"
    "\r\n"
    "ok\n";
// A connection that never completes a request (a TCP check that connects and
// lingers, or a slow client) is dropped after this.
constexpr auto kIdleTimeout = std::chrono::seconds(10);
// Requests larger than this are answered anyway once this much has arrived.
constexpr size_t kMaxRequest = 16 * 1024;
constexpr size_t kMaxConnections = 512;
constexpr int kTickMs = 500;

struct Connection {
  UniqueFd fd;
  std::string request;      // bytes received so far, until the header ends
  bool answered = false;    // response sent and write side shut down
  Clock::time_point deadline;
};

}  // namespace

HealthResponder::HealthResponder(UniqueFd listenFd, UniqueFd epollFd, UniqueFd stopFd,
                                 uint16_t port)
    : listenFd_(std::move(listenFd)), epollFd_(std::move(epollFd)), stopFd_(std::move(stopFd)),
      port_(port) {}

uint32_t HealthResponder::addressBe() const { return htonl(INADDR_LOOPBACK); }

Result<std::unique_ptr<HealthResponder>> HealthResponder::start() {
  UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!lfd) return systemError("health responder: socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(lfd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return systemError("health responder: bind 127.0.0.1");
  if (::listen(lfd.get(), SOMAXCONN) < 0) return systemError("health responder: listen");
  socklen_t len = sizeof addr;
  if (::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0)
    return systemError("health responder: getsockname");

  UniqueFd efd(::epoll_create1(EPOLL_CLOEXEC));
  if (!efd) return systemError("health responder: epoll_create1");
  UniqueFd stop(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!stop) return systemError("health responder: eventfd");
  for (int fd : {lfd.get(), stop.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(efd.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
      return systemError("health responder: epoll_ctl");
  }
  std::unique_ptr<HealthResponder> r(
      new HealthResponder(std::move(lfd), std::move(efd), std::move(stop), ntohs(addr.sin_port)));
  try {
    r->thread_ = std::thread([p = r.get()] { p->run(); });
  } catch (const std::system_error& e) {
    return Error{ErrorCode::kSystem, e.code().value(), "health responder: start thread"};
  }
  spdlog::debug("health responder listening on 127.0.0.1:{}", r->port_);
  return r;
}

HealthResponder::~HealthResponder() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stopFd_.get(), &one, sizeof one);
    thread_.join();
  }
}

void HealthResponder::run() {
  std::map<int, Connection> conns;  // owned by this thread only
  auto drop = [&](int fd) {
    ::epoll_ctl(epollFd_.get(), EPOLL_CTL_DEL, fd, nullptr);
    conns.erase(fd);
  };
  auto acceptAll = [&] {
    for (;;) {
      int fd = ::accept4(listenFd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error: epoll tells us again
      UniqueFd owned(fd);
      if (conns.size() >= kMaxConnections) continue;  // closes: shed load
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      if (::epoll_ctl(epollFd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) continue;
      conns.emplace(fd, Connection{std::move(owned), {}, false, Clock::now() + kIdleTimeout});
    }
  };
  // Reads what is there; answers once the request header is complete. After
  // answering we keep reading (and discarding) until the peer closes, so
  // closing never resets a connection whose response is still in flight.
  auto serve = [&](int fd) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    Connection& c = it->second;
    char buf[4096];
    bool peerDone = false;
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) {
        peerDone = true;
        break;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        return drop(fd);
      }
      if (!c.answered) c.request.append(buf, static_cast<size_t>(n));
    }
    if (c.answered || (peerDone && c.request.empty())) {
      if (peerDone) drop(fd);
      return;
    }
    // A client that shut down its write side after the request still gets
    // its answer (e.g. `printf 'GET / ...' | nc`).
    bool complete = c.request.find("\r\n\r\n") != std::string::npos ||
                    c.request.find("\n\n") != std::string::npos ||
                    c.request.size() >= kMaxRequest;
    if (!complete && !peerDone) return;
    // The response is far smaller than any socket buffer: one send suffices.
    if (::send(fd, kResponse.data(), kResponse.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(kResponse.size()))
      return drop(fd);
    served_.fetch_add(1);
    if (peerDone) return drop(fd);
    ::shutdown(fd, SHUT_WR);
    c.answered = true;
    c.request.clear();
  };

  epoll_event events[64];
  for (;;) {
    int n = ::epoll_wait(epollFd_.get(), events, 64, kTickMs);
    if (n < 0 && errno != EINTR) {
      spdlog::error("health responder: epoll_wait: {}", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == stopFd_.get()) return;
      if (fd == listenFd_.get()) acceptAll();
      else serve(fd);
    }
    auto now = Clock::now();
    for (auto it = conns.begin(); it != conns.end();) {
      int fd = it->first;
      ++it;
      if (conns.at(fd).deadline < now) drop(fd);
    }
  }
}

}  // namespace s2z::agent
