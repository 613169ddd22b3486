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

  // The sleep edge, right before the VMM is stopped: opens a fresh queue
  // (attached) and then detaches the current one through our copy of it, so
  // from now on every frame for the VM waits in the fresh queue, which fd()
  // returns, and the VMM reads nothing more. Frames the running VMM had not
  // read yet when the detach happened are purged by the kernel (a window of
  // microseconds while the VMM still reads). Pre: no divert pending.
  // Fails: kSystem; then nothing changed.
  Result<void> divert();
  // The sleep finished (the old VMM exited): closes our copy of the old queue.
  void commitDivert();
  // The sleep failed and the VMM runs on with its old queue: attaches the old
  // queue again, moves the frames that waited in the fresh queue over to it
  // (read, then re-sent on the tap once the fresh queue is closed; detaching
  // a queue purges it) and makes fd() the old queue. Frames arriving between
  // the last read and the close are lost. Fails: kSystem (the old queue is
  // then still made current if it could be attached).
  Result<void> revertDivert();

 private:
  TapDevice(UniqueFd fd, std::string name, uint32_t ifindex)
      : fd_(std::move(fd)), name_(std::move(name)), ifindex_(ifindex) {}

  UniqueFd fd_;
  UniqueFd previous_;  // the VMM's detached queue during a sleep edge
  std::string name_;
  uint32_t ifindex_ = 0;
};

}  // namespace s2z::agent
