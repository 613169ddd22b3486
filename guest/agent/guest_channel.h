// The agent's end of the host channel: the virtio-serial port "s2z.agent",
// carrying length-prefixed Frames (guestlink/frame_codec.h).
//
// Facts about a virtio-serial port this relies on (drivers/char/virtio_console.c):
// - with no host connected (QEMU's socket chardev has no client), poll()
//   reports POLLHUP at once, every time, and read() returns 0: polling it then
//   would spin, so the loop leaves the port out and waits for SIGIO;
// - with O_ASYNC and F_SETOWN the port sends SIGIO when the host connects or
//   disconnects and when data arrives;
// - a non-blocking write while no host is connected fails with EAGAIN; a
//   write that QEMU accepts while its chardev has no client is discarded. Both
//   are fine: ReliableSession keeps every sequenced frame until it is
//   acknowledged and it is sent again after the next Hello.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "guestlink/frame_codec.h"

namespace s2z::guest {

class GuestChannel {
 public:
  // Opens the port (O_RDWR, O_NONBLOCK) with SIGIO delivery to this process.
  static Result<GuestChannel> open(const std::string& devicePath);

  int fd() const { return fd_.get(); }
  bool connected() const { return connected_; }

  // Asks the port whether a host is connected now. Any change means a new
  // byte stream: partial input and unsent output of the old one are dropped.
  // Returns connected().
  bool refreshConnection();

  // Reads all available bytes and returns the complete frames among them. A
  // stream that stops parsing is logged and its buffered bytes dropped.
  std::vector<agent::v1::Frame> readFrames();

  // Queues the encoded frame and writes as much as the port takes now. With
  // no host connected the frame is dropped (see the file comment).
  void send(const agent::v1::Frame& frame);

  // Writes more queued output (call on POLLOUT); true while some is left.
  bool flush();
  bool wantsWrite() const { return !outbox_.empty(); }

 private:
  explicit GuestChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  void dropStreams();

  UniqueFd fd_;
  bool connected_ = false;
  guestlink::FrameDecoder decoder_;
  std::string outbox_;
};

}  // namespace s2z::guest
