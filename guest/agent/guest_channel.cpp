#include "guest/agent/guest_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "guest/agent/console_log.h"

namespace s2z::guest {

Result<GuestChannel> GuestChannel::open(const std::string& devicePath) {
  UniqueFd fd(::open(devicePath.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) return systemError("open channel " + devicePath);
  if (::fcntl(fd.get(), F_SETOWN, ::getpid()) != 0) return systemError("channel: F_SETOWN");
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_ASYNC) != 0) return systemError("channel: O_ASYNC");
  return GuestChannel(std::move(fd));
}

void GuestChannel::dropStreams() {
  decoder_.reset();
  outbox_.clear();
}

bool GuestChannel::refreshConnection() {
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
