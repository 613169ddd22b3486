// The real ScaleToZeroKernel: the tc_idle program on each tap, its maps
// pinned in bpffs (so counters, states and attachments survive a plugin
// restart) and the wake ring buffer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "bpf/s2z_types.h"
#include "bpf/scale_to_zero_kernel.h"
#include "bpf/tc_idle_program.h"
#include "common/result.h"

struct ring_buffer;

namespace s2z::bpf {

class KernelScaleToZero final : public ScaleToZeroKernel {
 public:
  // Loads the TC program with its maps pinned under <pinRoot>/v1/ (reusing
  // the pins of a previous process: counters, states and TC attachments
  // carry over), sets the health mark and drains wake records left in the
  // ring by a previous process (the state map still says WAKING for them).
  // Mounts a bpffs at /sys/fs/bpf if pinRoot is below it and none is
  // visible. If a pinned map had another layout it is replaced (warning
  // logged) and replacedMaps() > 0: the caller must re-register its
  // instances (addInstance, setState). Needs root (CAP_BPF, CAP_NET_ADMIN,
  // CAP_SYS_ADMIN for the mount). Fails naming the step and path.
  static Result<std::unique_ptr<KernelScaleToZero>> open(const std::filesystem::path& pinRoot,
                                                         uint32_t healthMark);
  // Leaves pins and TC attachments in place (a restart re-opens them).
  ~KernelScaleToZero() override;

  // Sets the skb->mark bits of health traffic (0: filtering off). Such
  // packets are counted only as health packets and never wake.
  Result<void> setHealthMark(uint32_t mark);

  // Registers the instance, then attaches the classifier to egress of the
  // tap (replacing an older s2z filter); a device with a master (the host
  // end of an alloc veth on Nomad's bridge) gets s2z_port_egress, which
  // counts only frames addressed to vmAddrBe. An existing registration keeps its
  // state and counters, so recovery may call this again. vmAddrBe 0: no
  // address (no connect redirect). Fails naming the tap; kAlreadyExists when
  // vmAddrBe is a live instance's on another interface (a stale entry, whose
  // interface or registration is gone, is replaced).
  Result<void> addInstance(uint32_t ifindex, uint32_t vmAddrBe) override;
  // Detaches from the tap (ok if the tap is gone) and deletes the entries.
  Result<void> removeInstance(uint32_t ifindex, uint32_t vmAddrBe) override;
  // Group networks: connections from the health checker's cgroup to
  // hostAddrBe:port (host order), which portmap DNATs to the instance behind
  // ifindex, go to the responder while it sleeps, as connections to its own
  // address do. add replaces; remove is ok if absent. Fails: kSystem.
  Result<void> addHostPort(uint32_t hostAddrBe, uint16_t port, uint32_t ifindex);
  Result<void> removeHostPort(uint32_t hostAddrBe, uint16_t port);

  // kNotFound for an unregistered ifindex. Setting a state wins over a
  // concurrent kernel SLEEPING -> WAKING flip (whose event still arrives).
  Result<void> setState(uint32_t ifindex, InstanceState state) override;
  Result<InstanceState> state(uint32_t ifindex) const override;
  Result<InstanceCounters> counters(uint32_t ifindex) const override;
  Result<uint16_t> waitingPort(uint32_t ifindex) const override;

  // Thread safety: the methods above may be called from any thread; the
  // two below from one thread at a time (the agent's event loop).
  int wakeEventFd() const override;
  std::vector<WakeEvent> drainWakeEvents() override;

  unsigned replacedMaps() const { return program_->replacedMaps(); }
  const TcIdleProgram& program() const { return *program_; }

  // Removes every pin under <pinRoot>/v1/ (maps; links of the health hooks
  // too): the full teardown when scale-to-zero is switched off for good.
  // Attached programs keep their maps alive until detached.
  static Result<void> removePins(const std::filesystem::path& pinRoot);

 private:
  explicit KernelScaleToZero(std::unique_ptr<TcIdleProgram> program)
      : program_(std::move(program)) {}
  static int onWakeRecord(void* self, void* data, size_t size);
  // The s2z_state entry; kNotFound for an unknown instance.
  Result<s2z_state_value> stateValue(uint32_t ifindex) const;
  // Ok unless vmAddrBe is registered to a live instance other than ifindex.
  Result<void> checkAddressFree(uint32_t vmAddrBe, uint32_t ifindex) const;

  std::unique_ptr<TcIdleProgram> program_;
  ring_buffer* ring_ = nullptr;        // owned; freed in the destructor
  std::vector<WakeEvent> draining_;    // filled by onWakeRecord during a drain
};

}  // namespace s2z::bpf
