// What an instance needs from the host network, behind one interface so the
// lifecycle logic can be unit-tested without root (tests use a fake whose
// "tap" is an ordinary fd). HostNetworkBackend is the real one: AddressPool,
// TapDevice and HostNetwork (agent/address_pool.h, tap_device.h,
// host_network.h) in the current network namespace.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "agent/address_pool.h"
#include "agent/group_network_spec.h"
#include "common/result.h"

namespace s2z::agent {

// A tap whose fd we hold for the life of the instance (across sleep).
class Tap {
 public:
  virtual ~Tap() = default;
  virtual int fd() const = 0;
  virtual const std::string& name() const = 0;
  virtual uint32_t ifindex() const = 0;
  // Removes the interface. Idempotent.
  virtual Result<void> destroy() = 0;
  // The sleep edge (TapDevice::divert): before the VMM stops, a fresh queue
  // takes every new frame and fd() returns it (the next VMM gets it); the
  // VMM's queue is detached. commitDivert() after the VMM exited;
  // revertDivert() if it resumes instead (its queue back, held frames moved).
  virtual Result<void> divert() = 0;
  virtual void commitDivert() = 0;
  virtual Result<void> revertDivert() = 0;
  // Drops the frames waiting in our queue (TapDevice::discardQueued).
  virtual size_t discardQueued() = 0;
};

class NetworkBackend {
 public:
  virtual ~NetworkBackend() = default;

  // Address leases (AddressPool semantics; owner is the task id).
  virtual Result<Lease> allocateAddress(const std::string& owner) = 0;
  virtual Result<Lease> reclaimAddress(const std::string& address, const std::string& owner) = 0;
  virtual Result<void> releaseAddress(const std::string& address) = 0;

  // Creates the persistent tap (or re-attaches to an existing one).
  virtual Result<std::unique_ptr<Tap>> createTap(const std::string& name) = 0;
  // Opens a new queue of an existing persistent tap; kNotFound if it is gone.
  // Use it only when no VMM holds a queue (the new queue takes frames).
  virtual Result<std::unique_ptr<Tap>> reopenTap(const std::string& name) = 0;
  // Takes a duplicate of the tap's queue fd from the process holding it (the
  // VMM after a plugin restart), so the agent holds the same queue again
  // (attached, see TapDevice::adopt). kNotFound if the process or such an fd
  // in it is gone.
  virtual Result<std::unique_ptr<Tap>> adoptTap(const std::string& name, pid_t holder) = 0;

  // Gateway, route and permanent neighbour for the VM (HostNetwork).
  virtual Result<void> plumb(const std::string& tapName, const Lease& lease,
                             const std::string& mac) = 0;
  virtual Result<void> unplumb(const std::string& tapName, const Lease& lease) = 0;
  virtual std::string macFor(const std::string& address) const = 0;

  // Nomad group networking: from now on the calls for task `taskId` (its
  // address, its tap tapNameFor(taskId), plumbing) act on the alloc's
  // network namespace group.netnsPath (agent/group_network_backend.h).
  // Call before allocateAddress/reclaimAddress. The binding ends with
  // releaseAddress. Fills in what it learns of the netns for the record
  // (group.eth0TxQueueLen) and says whether the task can sleep there.
  // Fails: kFailedPrecondition where unsupported (this default) or when eth0
  // cannot carry the VM's traffic, kNotFound/kInvalidArgument naming the
  // netns or eth0.
  virtual Result<GroupJoin> joinGroup(const std::string& taskId, GroupNetworkSpec& group) {
    (void)taskId;
    (void)group;
    return makeError(ErrorCode::kFailedPrecondition, "group networking is not supported here");
  }
};

// The real backend; leases live in leaseDir. Fails like AddressPool::open.
Result<std::unique_ptr<NetworkBackend>> makeHostNetworkBackend(
    const std::filesystem::path& leaseDir, const std::string& subnetCidr);

}  // namespace s2z::agent
