// The agent's end of the host channel, carrying length-prefixed Frames
// (guestlink/frame_codec.h): the virtio-serial port "s2z.agent" (QEMU), or a
// vsock port the agent listens on (Cloud Hypervisor, whose host end is its
// hybrid-vsock socket: vmm/hybrid_vsock.h).
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
//
// Over vsock each host connection is a stream of its own: the newest accepted
// one is the host's (after a restore the host connects again while the
// guest's old connection, unknown to the new VMM, only learns of its end from
// an RST); a connection that reports POLLHUP, POLLRDHUP or POLLERR is over.
// No SIGIO is needed: the loop polls the listener and the connection.
#pragma once

#include <cstdint>
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
  // Listens on vsock `port` (any CID) for the host's connections.
  static Result<GuestChannel> listenVsock(uint32_t port);

  // The port, or the current vsock connection (-1: none).
  int fd() const { return fd_.get(); }
  // The vsock listener to poll for POLLIN (-1 on a virtio-serial port).
  int listenFd() const { return listener_.get(); }
  bool connected() const { return connected_; }

  // Asks the port whether a host is connected now (vsock: accepts waiting
  // connections, and checks the current one). Any change means a new byte
  // stream: partial input and unsent output of the old one are dropped.
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
  GuestChannel(UniqueFd fd, UniqueFd listener) : fd_(std::move(fd)), listener_(std::move(listener)) {}
  void dropStreams();
  bool refreshVsock();

  UniqueFd fd_;
  UniqueFd listener_;  // vsock only
  bool connected_ = false;
  guestlink::FrameDecoder decoder_;
  std::string outbox_;
};

}  // namespace s2z::guest
