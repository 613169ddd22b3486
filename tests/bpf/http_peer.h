// Minimal HTTP/1.0 over real sockets for the tests: a server thread that
// answers every request with 200 (the always-200 responder, or the "VM"),
// and a blocking client.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "common/unique_fd.h"

namespace s2z::bpf::test {

class HttpServer {
 public:
  // Listens on addr:port (0: any port) in the calling thread's network
  // namespace and serves from a thread until destroyed.
  HttpServer(const char* addr, uint16_t port);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  void serve();

  UniqueFd listener_;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// GET / from addr:port (IPv4 dotted, or IPv6 text such as ::ffff:10.89.0.2)
// with 3 s timeouts; the client closes first once the body is read.
// Returns 0 on "HTTP/1.0 200", otherwise a small code saying what failed
// (1 socket, 2 connect, 3 send, 4 reply).
int httpGet(const std::string& addr, uint16_t port);

}  // namespace s2z::bpf::test
