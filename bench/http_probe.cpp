#include "bench/http_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"

namespace s2z::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on fd until the deadline; false on timeout.
bool waitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// Reads "Name: k1 k2 ...\nName: v1 v2 ..." pairs (snmp/netstat format) into a
// map "Name.key" -> value.
std::map<std::string, uint64_t> readProcTable(const std::string& path) {
  std::map<std::string, uint64_t> out;
  std::ifstream in(path);
  std::string keys, values;
  while (std::getline(in, keys) && std::getline(in, values)) {
    std::istringstream k(keys), v(values);
    std::string prefix, vprefix, key;
    k >> prefix;
    v >> vprefix;
    uint64_t value;
    while (k >> key && v >> value) out[prefix.substr(0, prefix.size() - 1) + "." + key] = value;
  }
  return out;
}

}  // namespace

HttpTiming timedGet(const std::string& address, uint16_t port, const std::string& path,
                    std::chrono::milliseconds timeout, const std::function<void()>& onSynSent) {
  HttpTiming t;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &to.sin_addr) != 1) {
    t.error = "bad address " + address;
    return t;
  }
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s) {
    t.error = "socket failed";
    return t;
  }
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  int rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to);
  if (rc < 0 && errno != EINPROGRESS) {
    t.errnum = errno;
    t.error = std::string("connect: ") + std::strerror(errno);
    return t;
  }
  if (onSynSent) onSynSent();
  if (!waitFor(s.get(), POLLOUT, deadline)) {
    t.error = "connect timed out";
    return t;
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    t.errnum = err;
    t.error = std::string("connect: ") + std::strerror(err);
    return t;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + address +
                    "\r\nUser-Agent: s2z-wake-bench\r\nConnection: close\r\n\r\n";
  if (::send(s.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    t.error = "send failed";
    return t;
  }
  std::string reply;
  char buf[4096];
  for (;;) {
    if (!waitFor(s.get(), POLLIN, deadline)) {
      t.error = "response timed out";
      return t;
    }
    ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      t.errnum = errno;
      t.error = std::string("recv: ") + std::strerror(errno);
      return t;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  t.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (reply.rfind("HTTP/1.", 0) == 0 && reply.size() > 12) t.status = std::atoi(reply.c_str() + 9);
  if (t.status == 0) t.error = "malformed response";
  if (auto end = reply.find("\r\n\r\n"); end != std::string::npos) t.body = reply.substr(end + 4);
  return t;
}

bool waitForHttp(const std::string& address, uint16_t port, std::chrono::milliseconds timeout,
                 const std::string& path) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto t = timedGet(address, port, path, std::chrono::milliseconds(1000));
    if (t.status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

Result<TcpRetransmits> readRetransmits() {
  auto snmp = readProcTable("/proc/thread-self/net/snmp");
  auto netstat = readProcTable("/proc/thread-self/net/netstat");
  auto seg = snmp.find("Tcp.RetransSegs");
  auto syn = netstat.find("TcpExt.TCPSynRetrans");
  if (seg == snmp.end() || syn == netstat.end())
    return makeError(ErrorCode::kNotFound, "TCP retransmit counters not found in /proc/net");
  return TcpRetransmits{seg->second, syn->second};
}

}  // namespace s2z::bench
