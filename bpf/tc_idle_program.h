// RAII owner of the tc_idle skeleton (bpf/tc_idle.bpf.c): the counting and
// wake-triggering classifier on egress of each task's tap.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "common/result.h"

struct s2z_tc_idle;

namespace s2z::bpf {

class TcIdleProgram {
 public:
  // Opens the skeleton, shares its maps through pins under `pinDir` (a
  // layoutDir(); empty: private unpinned maps, as BPF_PROG_TEST_RUN tests
  // want) and loads it into the kernel. Precondition: `pinDir` exists on a
  // bpffs (ensurePinDir). Fails with the libbpf error and the step.
  static Result<std::unique_ptr<TcIdleProgram>> load(const std::filesystem::path& pinDir);
  ~TcIdleProgram();
  TcIdleProgram(const TcIdleProgram&) = delete;
  TcIdleProgram& operator=(const TcIdleProgram&) = delete;

  // Sets the skb->mark bits that identify health packets (0: none are).
  // Takes effect for the next packet, in every process sharing the maps.
  Result<void> setHealthMask(uint32_t mask);

  // Attaches the classifier to clsact egress of `ifindex` (creating the
  // clsact qdisc if needed). Idempotent: an earlier s2z filter, also one
  // left by a previous plugin process, is replaced by this program. The
  // attachment lives in the kernel until detach() or the device goes away.
  Result<void> attach(uint32_t ifindex);
  // The same with s2z_port_egress, the classifier for the host end of an
  // alloc veth that is a bridge port (tc_idle.bpf.c): it counts and wakes
  // only on frames addressed to the instance. Same slot, so either replaces
  // the other.
  Result<void> attachPort(uint32_t ifindex);
  // Removes the s2z filter from egress of `ifindex`; ok if none or if the
  // device is gone.
  Result<void> detach(uint32_t ifindex);
  // Id of the program in the s2z filter slot on egress of `ifindex`, 0 if
  // the slot is empty (e.g. to check an attachment survived a restart).
  Result<uint32_t> attachedProgramId(uint32_t ifindex) const;

  int programFd() const;
  uint32_t programId() const;
  int stateMapFd() const;     // s2z_state
  int countersMapFd() const;  // s2z_counters
  int addrMapFd() const;      // s2z_addr
  int hostPortMapFd() const;  // s2z_hostport
  int portProgramFd() const;  // s2z_port_egress
  int configMapFd() const;    // s2z_cfg
  int wakeRingFd() const;     // s2z_wake_rb
  // Pinned maps of another layout replaced at load (see pinMapsUnder).
  unsigned replacedMaps() const { return replacedMaps_; }

 private:
  explicit TcIdleProgram(s2z_tc_idle* skel) : skel_(skel) {}
  Result<void> attachProgram(uint32_t ifindex, int progFd);

  s2z_tc_idle* skel_;  // owned; destroyed in the destructor
  unsigned replacedMaps_ = 0;
};

}  // namespace s2z::bpf
