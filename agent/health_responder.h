// The always-200 responder: while a VM sleeps, the health checker's
// connections to it are redirected here (cgroup/connect4), so checks keep
// passing without waking it. One thread, epoll, 127.0.0.1 on an ephemeral port.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

class HealthResponder {
 public:
  // Binds 127.0.0.1:0, listens and starts the serving thread. Any HTTP
  // request gets "HTTP/1.1 200 OK" with Connection: close; a plain TCP
  // connect that sends nothing is accepted and closed after a short idle time
  // or when the peer closes. Fails: kSystem if socket/epoll/thread fail.
  static Result<std::unique_ptr<HealthResponder>> start();

  // Stops the thread and closes every socket.
  ~HealthResponder();
  HealthResponder(const HealthResponder&) = delete;
  HealthResponder& operator=(const HealthResponder&) = delete;

  uint16_t port() const { return port_; }             // host byte order
  uint32_t addressBe() const;                          // 127.0.0.1, network order
  uint64_t requestsServed() const { return served_.load(); }  // 200s sent

 private:
  HealthResponder(UniqueFd listenFd, UniqueFd epollFd, UniqueFd stopFd, uint16_t port);
  void run();

  UniqueFd listenFd_;
  UniqueFd epollFd_;
  UniqueFd stopFd_;  // eventfd: the destructor writes it to end run()
  uint16_t port_ = 0;
  std::atomic<uint64_t> served_{0};
  std::thread thread_;
};

}  // namespace s2z::agent
