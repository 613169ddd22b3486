// A persistent multi-queue tap whose VM queue fd we hold. While the VM sleeps
// no VMM has the tap open, but our fd keeps the queue alive: frames sent to
// the VM queue in it (up to txqueuelen) and the restored guest reads them
// (design.md, Sleeping). At the sleep edge a fresh queue takes over from the
// VMM's (divert()), so no frame is read by a VMM that is about to exit.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

class TapDevice {
 public:
  // Creates (or attaches to, if it already exists) the persistent tap `name`
  // (IFF_TAP|IFF_NO_PI|IFF_MULTI_QUEUE, no vnet header: QEMU's fd-backed
  // netdev does not need one), marks it persistent, sets txqueuelen 1000 and brings the link up.
  // Pre: CAP_NET_ADMIN in the current netns; name shorter than IFNAMSIZ.
  // Fails: kInvalidArgument for a bad name, kSystem (errno) otherwise; on
  // failure a tap created by this call is removed again.
  static Result<TapDevice> create(const std::string& name);

  // Opens a new (attached) queue of an existing persistent tap (plugin
  // restart recovery when no VMM holds one) and makes sure the link is up.
  // Works while a VMM holds another queue. Fails: kNotFound if no such
  // interface, kSystem otherwise (e.g. EINVAL for a tap made without
  // IFF_MULTI_QUEUE, EBUSY if it is not a tap).
  static Result<TapDevice> reopen(const std::string& name);

  // Holds `fd`, a queue of tap `name` duplicated from the VMM that has it
  // (pidfd_getfd), and attaches that queue if a sleep edge left it detached.
  // Fails: kSystem.
  static Result<TapDevice> adopt(UniqueFd fd, const std::string& name);

  TapDevice(TapDevice&&) noexcept = default;
  TapDevice& operator=(TapDevice&&) noexcept = default;
  TapDevice(const TapDevice&) = delete;
  TapDevice& operator=(const TapDevice&) = delete;
  // Closes our fd; the persistent tap stays (call destroy() to remove it).
  ~TapDevice() = default;

  // The queue fd; -1 after destroy() or on a moved-from object.
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  uint32_t ifindex() const { return ifindex_; }

  // Clears the persistent flag and closes our fds: the interface disappears
  // once no other process (a VMM) holds it. Idempotent.
  Result<void> destroy();

  // The sleep edge, right before the VMM is stopped: installs a steering
  // program that sends every frame to queue 1 (the fresh one while there are
  // two, the only one otherwise), opens a fresh queue (it becomes queue 1) and
  // waits up to 100 ms until the running VMM has read what was left in its own
  // queue. From then on every frame waits in the fresh queue, which fd()
  // returns and the next VMM gets; the VMM's queue stays attached but gets
  // nothing (a detach would purge its unread frames). Pre: no divert pending
  // and the VMM's queue is the tap's only one. Fails: kSystem.
  Result<void> divert();
  // The sleep finished (the old VMM exited): closes our copy of the old queue;
  // the fresh queue becomes queue 0, still steered to (1 % 1).
  void commitDivert();
  // The sleep failed and the VMM runs on with its own queue: reads the frames
  // that waited in the fresh queue, closes it (closing purges a queue) and
  // sends them on the tap again, now to the VMM's queue; fd() is that queue
  // again. Frames arriving between the read and the close are lost (no VMM
  // involved: microseconds). Fails: kSystem (packet socket).
  Result<void> revertDivert();
  // Reads and drops every frame waiting in our queue: frames for a guest that
  // was lost (a cold boot replaces it). Returns how many. No VMM may hold
  // the queue meanwhile.
  size_t discardQueued();

 private:
  TapDevice(UniqueFd fd, std::string name, uint32_t ifindex)
      : fd_(std::move(fd)), name_(std::move(name)), ifindex_(ifindex) {}

  UniqueFd fd_;
  UniqueFd previous_;  // the VMM's detached queue during a sleep edge
  std::string name_;
  uint32_t ifindex_ = 0;
};

}  // namespace s2z::agent
