#include "tests/cloud_hypervisor/ch_api_standin.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "vmm/cloud_hypervisor/ch_http.h"

namespace s2z::tests::ch {
namespace {

using nlohmann::json;

FdCheck checkFd(int fd) {
  FdCheck c;
  c.valid = ::fcntl(fd, F_GETFD) >= 0;
  ifreq ifr{};
  if (c.valid && ::ioctl(fd, TUNGETIFF, &ifr) == 0) {
    c.isTap = (ifr.ifr_flags & IFF_TAP) != 0;
    c.tapName = ifr.ifr_name;
  }
  return c;
}

const char* reasonFor(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    default: return "Internal Server Error";
  }
}

void writeAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away; nothing to tell it
    off += static_cast<size_t>(n);
  }
}

}  // namespace

json RecordedRequest::toJson() const {
  json f = json::array();
  for (const auto& c : fds) f.push_back({{"valid", c.valid}, {"is_tap", c.isTap}, {"tap", c.tapName}});
  return {{"method", method}, {"endpoint", endpoint}, {"body", body},
          {"fds_received", fdsReceived}, {"fds_expected", fdsExpected},
          {"fds_with_first_chunk", fdsWithFirstChunk}, {"fds", f},
          {"status", status}, {"reply", reply}};
}

RecordedRequest RecordedRequest::fromJson(const json& j) {
  RecordedRequest r;
  r.method = j.at("method");
  r.endpoint = j.at("endpoint");
  r.body = j.at("body");
  r.fdsReceived = j.at("fds_received");
  r.fdsExpected = j.at("fds_expected");
  r.fdsWithFirstChunk = j.at("fds_with_first_chunk");
  for (const auto& c : j.at("fds")) r.fds.push_back({c.at("valid"), c.at("is_tap"), c.at("tap")});
  r.status = j.at("status");
  r.reply = j.at("reply");
  return r;
}

ChApiStandin::ChApiStandin(std::filesystem::path socket, UniqueFd listenFd, UniqueFd stopFd,
                           vmm::ch::ChVersion version)
    : socket_(std::move(socket)), listenFd_(std::move(listenFd)), stopFd_(std::move(stopFd)),
      vm_(version) {}

ChApiStandin::~ChApiStandin() {
  std::error_code ec;
  std::filesystem::remove(socket_, ec);
}

Result<std::unique_ptr<ChApiStandin>> ChApiStandin::listen(const std::filesystem::path& socket,
                                                           vmm::ch::ChVersion version) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.native().size() >= sizeof addr.sun_path) {
    return makeError(ErrorCode::kInvalidArgument, "socket path too long");
  }
  std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  std::error_code ec;
  std::filesystem::remove(socket, ec);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return systemError("socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return systemError("bind " + socket.string());
  }
  if (::listen(fd.get(), 16) != 0) return systemError("listen");
  UniqueFd stopFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stopFd) return systemError("eventfd");
  return std::unique_ptr<ChApiStandin>(
      new ChApiStandin(socket, std::move(fd), std::move(stopFd), version));
}

void ChApiStandin::stop() {
  uint64_t one = 1;
  (void)!::write(stopFd_.get(), &one, sizeof one);
}

std::vector<RecordedRequest> ChApiStandin::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

Result<void> ChApiStandin::serve(const std::function<void(const RecordedRequest&)>& onRequest) {
  while (true) {
    pollfd pfds[2] = {{listenFd_.get(), POLLIN, 0}, {stopFd_.get(), POLLIN, 0}};
    int pr = ::poll(pfds, 2, -1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return systemError("poll");
    if (pfds[1].revents) return okResult();
    UniqueFd conn(::accept4(listenFd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    auto exit = serveConnection(conn.get(), onRequest);
    if (!exit.ok()) return exit.error();
    if (*exit) return okResult();
  }
}

Result<bool> ChApiStandin::serveConnection(int conn,
                                           const std::function<void(const RecordedRequest&)>& cb) {
  vmm::ch::HttpParser parser(vmm::ch::HttpParser::Kind::kRequest);
  std::vector<UniqueFd> fds;
  RecordedRequest rec;
  bool first = true;
  char buf[16 * 1024];
  while (!parser.done()) {
    pollfd pfd{conn, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) <= 0) return false;  // a client that sends nothing: drop it
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 32)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // closed mid-request
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
        fds.emplace_back(fd);
        if (!first) rec.fdsWithFirstChunk = false;
      }
    }
    first = false;
    auto fed = parser.feed(std::string_view(buf, static_cast<size_t>(n)));
    if (!fed.ok()) {
      writeAll(conn, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      return false;
    }
  }
  const auto& req = parser.message();
  rec.method = req.method;
  rec.endpoint = req.target.rfind(vmm::ch::kApiBase, 0) == 0
                     ? req.target.substr(vmm::ch::kApiBase.size()) : req.target;
  rec.body = json::parse(req.body, nullptr, false);
  if (rec.body.is_discarded()) rec.body = nullptr;
  rec.fdsReceived = static_cast<int>(fds.size());
  rec.fdsExpected = StandinVm::expectedFds(rec.endpoint, rec.body);
  for (const auto& fd : fds) rec.fds.push_back(checkFd(fd.get()));

  StandinReply reply;
  if (!rec.fdsWithFirstChunk) {
    reply = {400, "fds must arrive with the first part of the request", false};
  } else {
    reply = vm_.handle(req, rec.fdsReceived);
  }
  rec.status = reply.status;
  rec.reply = reply.body;
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(rec);
  }
  if (cb) cb(rec);

  std::string response = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                         reasonFor(reply.status) + "\r\nServer: s2z-ch-standin\r\n";
  if (reply.status != 204) {
    response += "Content-Type: application/json\r\nContent-Length: " +
                std::to_string(reply.body.size()) + "\r\n";
  }
  response += "\r\n";
  if (reply.status != 204) response += reply.body;
  writeAll(conn, response);
  return reply.exitAfter;
}

}  // namespace s2z::tests::ch
