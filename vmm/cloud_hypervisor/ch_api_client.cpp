#include "vmm/cloud_hypervisor/ch_api_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/unique_fd.h"
#include "common/unix_socket.h"
#include "vmm/cloud_hypervisor/ch_json.h"

namespace s2z::vmm::ch {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxFds = 16;

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Connects within the deadline. A VMM that is hung or stopped (SIGSTOP) but
// still listening lets connections queue until its backlog is full; the next
// blocking connect() would then wait for an accept() that never comes.
// SO_SNDTIMEO bounds that wait (the kernel returns EAGAIN when it ends).
Result<UniqueFd> connectTo(const std::filesystem::path& path, Clock::time_point deadline) {
  sockaddr_un addr{};
  UniqueFd dir;  // a long path's directory, until the connect is done
  S2Z_TRY(unixSocketAddress(path, addr, dir), "api socket");
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return systemError("socket");
  const int ms = std::max(msLeft(deadline), 1);  // 0 would mean "no limit"
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return systemError("set the connect timeout");
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) {
      return Error{ErrorCode::kTimeout, errno,
                   "timed out connecting to " + path.string() + " (the VMM accepts nothing)"};
    }
    Error e = systemError("connect " + path.string());
    e.code = ErrorCode::kUnavailable;  // not listening yet, or gone
    return e;
  }
  return fd;
}

// Writes all of data; the first sendmsg carries fds as SCM_RIGHTS.
Result<void> sendAll(int fd, std::string_view data, std::span<const int> fds,
                     Clock::time_point deadline) {
  bool fdsSent = fds.empty();
  size_t off = 0;
  while (off < data.size()) {
    pollfd pfd{fd, POLLOUT, 0};
    int pr = ::poll(&pfd, 1, msLeft(deadline));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return systemError("poll");
    if (pr == 0) return makeError(ErrorCode::kTimeout, "timed out sending request");

    iovec iov{const_cast<char*>(data.data() + off), data.size() - off};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    if (!fdsSent) {
      std::memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      Error e = systemError("send request");
      if (errno == EPIPE || errno == ECONNRESET) e.code = ErrorCode::kUnavailable;
      return e;
    }
    fdsSent = true;
    off += static_cast<size_t>(n);
  }
  return okResult();
}

Result<HttpMessage> readResponse(int fd, Clock::time_point deadline) {
  HttpParser parser(HttpParser::Kind::kResponse);
  char buf[16 * 1024];
  while (!parser.done()) {
    pollfd pfd{fd, POLLIN, 0};
    int pr = ::poll(&pfd, 1, msLeft(deadline));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return systemError("poll");
    if (pr == 0) return makeError(ErrorCode::kTimeout, "timed out waiting for the response");
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = systemError("read response");
      if (errno == ECONNRESET) e.code = ErrorCode::kUnavailable;
      return e;
    }
    if (n == 0) {
      auto fin = parser.finish();
      if (!fin.ok()) {
        return makeError(ErrorCode::kUnavailable, "connection closed before a full response");
      }
      break;
    }
    S2Z_TRY(parser.feed(std::string_view(buf, static_cast<size_t>(n))), "read response");
  }
  return parser.message();
}

Result<void> expectOk(Result<HttpMessage> r) {
  if (!r.ok()) return r.error();
  return okResult();
}

}  // namespace

Result<HttpMessage> ChApiClient::send(std::string_view method, std::string_view endpoint,
                                      const nlohmann::json* body, std::span<const int> fds) {
  if (fds.size() > kMaxFds) {
    return makeError(ErrorCode::kInvalidArgument, "too many fds for one request");
  }
  std::string context = std::string(method) + " " + std::string(endpoint);
  auto deadline = Clock::now() + timeout_;
  auto conn = connectTo(socket_, deadline);
  if (!conn.ok()) return conn.error().wrap(context);
  std::string request = formatRequest(method, endpoint, body ? body->dump() : std::string());
  S2Z_TRY(sendAll(conn->get(), request, fds, deadline), context);
  auto response = readResponse(conn->get(), deadline);
  if (!response.ok()) return response.error().wrap(context);
  return response;
}

Result<HttpMessage> ChApiClient::call(std::string_view method, std::string_view endpoint,
                                      const nlohmann::json* body, std::span<const int> fds) {
  auto response = send(method, endpoint, body, fds);
  if (!response.ok()) return response;
  if (response->status / 100 != 2) {
    std::string text = response->body.empty() ? response->reason : response->body;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return makeError(ErrorCode::kVmmError, std::string(method) + " " + std::string(endpoint) +
                                               ": HTTP " + std::to_string(response->status) +
                                               ": " + text);
  }
  return response;
}

Result<PingInfo> ChApiClient::ping() {
  auto r = call("GET", "vmm.ping");
  if (!r.ok()) return r.error();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("version") || !j["version"].is_string()) {
    return makeError(ErrorCode::kVmmError, "GET vmm.ping: response without a version: " + r->body);
  }
  PingInfo info;
  info.version = j["version"].get<std::string>();
  if (auto p = j.find("pid"); p != j.end() && p->is_number_integer()) info.pid = p->get<int64_t>();
  if (auto f = j.find("features"); f != j.end() && f->is_array()) {
    for (const auto& x : *f) {
      if (x.is_string()) info.features.push_back(x.get<std::string>());
    }
  }
  return info;
}

Result<void> ChApiClient::createVm(const nlohmann::json& c) { return expectOk(call("PUT", "vm.create", &c)); }

Result<void> ChApiClient::addNet(const nlohmann::json& netConfig, int tapFd) {
  if (tapFd < 0) return makeError(ErrorCode::kInvalidArgument, "vm.add-net: no tap fd");
  int fds[1] = {tapFd};
  return expectOk(call("PUT", "vm.add-net", &netConfig, fds));
}

Result<void> ChApiClient::boot() { return expectOk(call("PUT", "vm.boot")); }
Result<void> ChApiClient::pause() { return expectOk(call("PUT", "vm.pause")); }
Result<void> ChApiClient::resume() { return expectOk(call("PUT", "vm.resume")); }
Result<void> ChApiClient::snapshot(const nlohmann::json& c) { return expectOk(call("PUT", "vm.snapshot", &c)); }

Result<void> ChApiClient::restore(const nlohmann::json& restoreConfig,
                                  std::span<const int> netFds) {
  // The VMM hands the fds out in order across net_fds and rejects (400) any
  // mismatch; refusing here keeps a wrong request from ever being sent.
  int announced = announcedNetFds(restoreConfig);
  if (announced != static_cast<int>(netFds.size())) {
    return makeError(ErrorCode::kInvalidArgument,
                     "vm.restore: net_fds announces " + std::to_string(announced) +
                         " fds but " + std::to_string(netFds.size()) + " are attached");
  }
  return expectOk(call("PUT", "vm.restore", &restoreConfig, netFds));
}

Result<nlohmann::json> ChApiClient::info() {
  auto r = call("GET", "vm.info");
  if (!r.ok()) return r.error();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return makeError(ErrorCode::kVmmError, "GET vm.info: bad JSON");
  return j;
}

Result<nlohmann::json> ChApiClient::counters() {
  auto r = call("GET", "vm.counters");
  if (!r.ok()) return r.error();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return makeError(ErrorCode::kVmmError, "GET vm.counters: bad JSON");
  return j;
}

Result<void> ChApiClient::powerButton() { return expectOk(call("PUT", "vm.power-button")); }
Result<void> ChApiClient::shutdownVm() { return expectOk(call("PUT", "vm.shutdown")); }
Result<void> ChApiClient::shutdownVmm() { return expectOk(call("PUT", "vmm.shutdown")); }

}  // namespace s2z::vmm::ch
