#include "tests/cni/stand_in_host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/netns.h"
#include "tests/cni/cni_plugin_runner.h"

namespace s2z::cni_test {

agent::AgentConfig cniAgentConfig(const agent::testing::IntegrationEnv& env) {
  agent::AgentConfig config;
  config.stateDir = env.stateDir();
  config.subnet = "10.89.0.0/24";
  config.healthCheckMark = kHealthMark;
  config.healthCheckCgroup = env.cgroupRel();
  config.idlePollInterval = std::chrono::milliseconds(50);
  config.bpfPinRoot = env.pinRoot();
  return config;
}

Result<void> addNodeAddress() {
  // On loopback (this kernel has no dummy devices): a local address all the
  // same, which is what portmap's "--dst-type LOCAL" DNAT matches.
  auto done = runTool({"ip", "addr", "add", std::string(kNodeAddress) + "/32", "dev", "lo"});
  if (!done.ok()) return done.error().wrap("node address");
  return okResult();
}

Result<void> sendBroadcastNoise(const std::string& netnsPath, int rounds) {
  auto ns = agent::NetnsHandle::open(netnsPath);
  if (!ns.ok()) return ns.error();
  return ns->run([&]() -> Result<void> {
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) return systemError("udp socket");
    int one = 1;
    ::setsockopt(sock.get(), SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    for (int i = 0; i < rounds; ++i) {
      // .255: the subnet broadcast; .240-.250: unused, so ARP broadcasts.
      for (const char* to : {"172.26.79.255", "172.26.64.240", "172.26.64.250"}) {
        sockaddr_in dst{};
        dst.sin_family = AF_INET;
        dst.sin_port = htons(9);
        ::inet_pton(AF_INET, to, &dst.sin_addr);
        (void)::sendto(sock.get(), "noise", 5, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
      }
      ::usleep(100 * 1000);
    }
    return okResult();
  });
}

TinyServer::TinyServer(const std::string& netnsPath, uint16_t port, std::string reply) {
  auto ns = agent::NetnsHandle::open(netnsPath);
  if (!ns.ok()) return;
  auto fd = ns->run([&]() -> Result<UniqueFd> {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) return systemError("socket");
    int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return systemError("bind");
    if (::listen(s.get(), 16) != 0) return systemError("listen");
    return s;
  });
  if (!fd.ok()) return;
  listen_ = std::move(*fd);
  stop_.reset(::eventfd(0, EFD_CLOEXEC));
  thread_ = std::thread([this, reply = std::move(reply)] {
    for (;;) {
      pollfd p[2] = {{listen_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 || p[1].revents) return;
      UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (c) (void)::write(c.get(), reply.data(), reply.size());
    }
  });
}

TinyServer::~TinyServer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)::write(stop_.get(), &one, sizeof one);
    thread_.join();
  }
}

std::string tcpFetch(const std::string& address, uint16_t port, std::chrono::milliseconds timeout) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return "";
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &dst.sin_addr);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) return "";
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(s.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace s2z::cni_test
