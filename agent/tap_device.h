// A persistent tap whose fd we hold. While the VM sleeps no VMM has the tap
// open, but our fd keeps the queue alive: frames sent to the VM queue in it
// (up to txqueuelen) and the restored guest reads them (design.md, Sleeping).
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

class TapDevice {
 public:
  // Creates (or attaches to, if it already exists) the persistent tap `name`
  // (IFF_TAP|IFF_NO_PI, no vnet header: QEMU's fd-backed netdev does not need
  // one), marks it persistent, sets txqueuelen 1000 and brings the link up.
  // Pre: CAP_NET_ADMIN in the current netns; name shorter than IFNAMSIZ.
  // Fails: kInvalidArgument for a bad name, kSystem (errno) otherwise; on
  // failure a tap created by this call is removed again.
  static Result<TapDevice> create(const std::string& name);

  // Re-attaches to an existing persistent tap (plugin restart recovery) and
  // makes sure the link is up. Fails: kNotFound if no such interface,
  // kSystem otherwise (e.g. EBUSY if it is not a tap).
  static Result<TapDevice> reopen(const std::string& name);

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

  // Clears the persistent flag and closes our fd: the interface disappears
  // once no other process (a VMM) holds it. Idempotent.
  Result<void> destroy();

 private:
  TapDevice(UniqueFd fd, std::string name, uint32_t ifindex)
      : fd_(std::move(fd)), name_(std::move(name)), ifindex_(ifindex) {}

  UniqueFd fd_;
  std::string name_;
  uint32_t ifindex_ = 0;
};

}  // namespace s2z::agent
