#include "vmm/qemu/qmp_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/unix_socket.h"

namespace s2z::vmm::qemu {
namespace {

using Clock = std::chrono::steady_clock;

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace

std::optional<std::string> takeLine(std::string& buffer) {
  auto nl = buffer.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  std::string line = buffer.substr(0, nl);
  buffer.erase(0, nl + 1);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<std::optional<nlohmann::json>> interpretQmpMessage(const nlohmann::json& message,
                                                          uint64_t id) {
  if (!message.is_object() || message.contains("event") || message.contains("QMP")) {
    return std::optional<nlohmann::json>{};
  }
  auto idIt = message.find("id");
  if (idIt == message.end() || !idIt->is_number_unsigned() || idIt->get<uint64_t>() != id) {
    return std::optional<nlohmann::json>{};
  }
  if (auto ret = message.find("return"); ret != message.end()) {
    return std::optional<nlohmann::json>{*ret};
  }
  if (auto err = message.find("error"); err != message.end()) {
    std::string cls = err->value("class", "GenericError");
    std::string desc = err->value("desc", "no description");
    return makeError(ErrorCode::kVmmError, "qemu: " + desc + " (" + cls + ")");
  }
  return makeError(ErrorCode::kVmmError, "qmp: reply without return or error: " + message.dump());
}

Result<QmpClient> QmpClient::connect(const std::filesystem::path& socket,
                                     std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  Error last = makeError(ErrorCode::kTimeout, "qmp: no socket");
  for (;;) {
    auto fd = connectUnix(socket);
    if (fd.ok()) {
      auto client = fromConnectedFd(std::move(*fd), std::chrono::milliseconds(msLeft(deadline)));
      if (client.ok()) return client;
      last = client.error();
      // A closed connection during the greeting is QEMU still starting up or
      // dying; both are worth a retry until the deadline.
      if (last.code != ErrorCode::kUnavailable) return last;
    } else {
      last = fd.error();
      if (last.errnum != ENOENT && last.errnum != ECONNREFUSED) return last.wrap("qmp");
    }
    if (Clock::now() >= deadline) {
      return Error{ErrorCode::kTimeout, last.errnum, "qmp: not reachable at " + socket.string() +
                                                         " within timeout: " + last.message};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<QmpClient> QmpClient::fromConnectedFd(UniqueFd fd, std::chrono::milliseconds timeout) {
  QmpClient client(std::move(fd));
  S2Z_TRY(client.handshake(timeout), "qmp handshake");
  return client;
}

Result<void> QmpClient::handshake(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto greeting = readMessage(deadline);
  if (!greeting.ok()) return greeting.error();
  if (!greeting->contains("QMP")) {
    return makeError(ErrorCode::kVmmError, "unexpected greeting: " + greeting->dump());
  }
  auto caps = execute("qmp_capabilities", nlohmann::json::object(),
                      std::chrono::milliseconds(msLeft(deadline) + 1));
  if (!caps.ok()) return caps.error();
  return okResult();
}

Result<nlohmann::json> QmpClient::readMessage(Clock::time_point deadline) {
  for (;;) {
    if (auto line = takeLine(buffer_)) {
      if (line->empty()) continue;
      auto parsed = nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) {
        return makeError(ErrorCode::kVmmError, "qmp: invalid JSON: " + *line);
      }
      return parsed;
    }
    if (!fd_) return makeError(ErrorCode::kUnavailable, "qmp: not connected");
    pollfd pfd{fd_.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, msLeft(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return systemError("qmp: poll");
    if (r == 0) return makeError(ErrorCode::kTimeout, "qmp: no reply in time");
    char chunk[4096];
    ssize_t n = ::read(fd_.get(), chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : 0;
      fd_.reset();
      return Error{ErrorCode::kUnavailable, err, "qmp: connection closed by qemu"};
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Result<nlohmann::json> QmpClient::execute(const std::string& command,
                                          const nlohmann::json& arguments,
                                          std::chrono::milliseconds timeout) {
  return run(command, arguments, timeout, -1);
}

Result<void> QmpClient::sendFd(const std::string& name, int fd, std::chrono::milliseconds timeout) {
  auto r = run("getfd", {{"fdname", name}}, timeout, fd);
  if (!r.ok()) return r.error();
  return okResult();
}

Result<nlohmann::json> QmpClient::run(const std::string& command, const nlohmann::json& arguments,
                                      std::chrono::milliseconds timeout, int passFd) {
  if (!fd_) return makeError(ErrorCode::kUnavailable, "qmp: not connected");
  auto deadline = Clock::now() + timeout;
  uint64_t id = nextId_++;
  nlohmann::json request = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) request["arguments"] = arguments;
  std::string out = request.dump() + "\n";
  size_t off = 0;
  while (off < out.size()) {
    iovec iov{out.data() + off, out.size() - off};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (passFd >= 0 && off == 0) {
      // The fd rides on the first byte of the command, as QEMU expects.
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &passFd, sizeof(int));
    }
    ssize_t w = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      Error e{ErrorCode::kUnavailable, errno, "qmp: send " + command};
      fd_.reset();
      return e;
    }
    off += static_cast<size_t>(w);
  }
  for (;;) {
    auto message = readMessage(deadline);
    if (!message.ok()) return message.error().wrap(command);
    auto meaning = interpretQmpMessage(*message, id);
    if (!meaning.ok()) return meaning.error().wrap(command);
    if (meaning->has_value()) return std::move(**meaning);
  }
}

}  // namespace s2z::vmm::qemu
