#include "agent/boot_gate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <thread>

#include <spdlog/spdlog.h>

#include "bpf/s2z_types.h"
#include "common/unique_fd.h"

namespace s2z::agent {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kPoll = 50ms;
constexpr auto kConnectTimeout = 250ms;

// One marked connection attempt; true when the guest accepted it.
bool probeAccepts(const std::string& address, uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  uint32_t mark = S2Z_BOOT_PROBE_MARK;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) return false;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &to.sin_addr) != 1) return false;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(kConnectTimeout.count())) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  return ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

}  // namespace

BootGateOutcome waitUntilServing(const bpf::ScaleToZeroKernel& kernel, uint32_t ifindex,
                                 const std::string& guestAddress, const BootGateLimits& limits,
                                 const std::atomic<bool>& giveWay) {
  BootGateOutcome out;
  const auto start = Clock::now();
  auto done = [&] {
    out.waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return out;
  };
  while (out.port == 0) {
    if ((out.gaveWay = giveWay.load())) return done();
    auto port = kernel.waitingPort(ifindex);
    if (!port.ok()) return done();
    out.port = *port;
    if (out.port != 0) break;
    if (Clock::now() - start >= limits.clientWait) return done();
    std::this_thread::sleep_for(kPoll);
  }
  const auto serveDeadline = Clock::now() + limits.serveWait;
  while (!(out.serving = probeAccepts(guestAddress, out.port))) {
    if ((out.gaveWay = giveWay.load())) break;
    if (Clock::now() >= serveDeadline) {
      spdlog::warn("boot gate: {}:{} not served after {} ms; letting connections through", guestAddress,
                   out.port, limits.serveWait.count());
      break;
    }
    std::this_thread::sleep_for(kPoll);
  }
  return done();
}

}  // namespace s2z::agent
