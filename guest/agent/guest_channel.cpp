#include "guest/agent/guest_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
// After sys/socket.h, which it needs.
#include <linux/vm_sockets.h>

#include <string>

#include "guest/agent/console_log.h"

namespace s2z::guest {

Result<GuestChannel> GuestChannel::open(const std::string& devicePath) {
  UniqueFd fd(::open(devicePath.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) return systemError("open channel " + devicePath);
  if (::fcntl(fd.get(), F_SETOWN, ::getpid()) != 0) return systemError("channel: F_SETOWN");
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_ASYNC) != 0) return systemError("channel: O_ASYNC");
  return GuestChannel(std::move(fd), UniqueFd());
}

Result<GuestChannel> GuestChannel::listenVsock(uint32_t port) {
  UniqueFd listener(::socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener) return systemError("channel: vsock socket");
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_ANY;
  addr.svm_port = port;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return systemError("channel: bind vsock port " + std::to_string(port));
  }
  if (::listen(listener.get(), 4) != 0) return systemError("channel: listen on vsock");
  return GuestChannel(UniqueFd(), std::move(listener));
}

bool GuestChannel::refreshVsock() {
  for (;;) {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) break;  // EAGAIN: none waiting
    fd_ = std::move(conn);
    dropStreams();
    connected_ = true;
    logLine("host connected (vsock)");
  }
  if (fd_) {
    pollfd p{fd_.get(), POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR))) {
      // Frames it left unread are resent after the next Hello (see open()).
      fd_.reset();
      dropStreams();
      connected_ = false;
      logLine("host disconnected (vsock)");
    }
  }
  return connected_;
}

void GuestChannel::dropStreams() {
  decoder_.reset();
  outbox_.clear();
}

bool GuestChannel::refreshConnection() {
  if (listener_) return refreshVsock();
  // With no host the port reports POLLHUP (and POLLIN: a read would not
  // block, it returns 0). Frames a departed host left unread are dropped:
  // unacknowledged, so the host sends them again after its next Hello.
  pollfd p{fd_.get(), POLLIN, 0};
  bool now = !(::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP));
  if (now != connected_) {
    dropStreams();
    connected_ = now;
    logLine(now ? "host connected" : "host disconnected");
  }
  return connected_;
}

std::vector<agent::v1::Frame> GuestChannel::readFrames() {
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: drained; 0: the host is gone
    decoder_.feed(buf, static_cast<size_t>(n));
  }
  std::vector<agent::v1::Frame> frames;
  while (auto frame = decoder_.next()) frames.push_back(std::move(*frame));
  if (!decoder_.error().empty()) {
    logLine("channel: " + decoder_.error() + "; dropping buffered input");
    decoder_.reset();
  }
  return frames;
}

void GuestChannel::send(const agent::v1::Frame& frame) {
  if (!connected_) return;
  outbox_ += guestlink::encodeFrame(frame);
  flush();
}

bool GuestChannel::flush() {
  while (!outbox_.empty()) {
    ssize_t n = ::write(fd_.get(), outbox_.data(), outbox_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;  // the port is full: POLLOUT later
    if (n < 0) {
      // The host went away mid-write: this stream is over (resent after Hello).
      outbox_.clear();
      return false;
    }
    outbox_.erase(0, static_cast<size_t>(n));
  }
  return false;
}

}  // namespace s2z::guest
