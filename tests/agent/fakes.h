// Fakes of the agent's collaborators for unit tests (no root, no QEMU):
// a Vmm whose "process" is an eventfd that turns readable when it "exits", a
// ScaleToZeroKernel with the kernel's CAS semantics, and a NetworkBackend
// whose "tap" is an ordinary fd. One shared FakeWorld records what happened.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/network_backend.h"
#include "bpf/scale_to_zero_kernel.h"
#include "common/unique_fd.h"
#include "vmm/vmm.h"

namespace s2z::agent::testing {

// What the fake VMMs did and what they should do next. Guarded by mutex.
struct FakeWorld {
  std::mutex mutex;
  int boots = 0, sleeps = 0, restores = 0, standbys = 0, shutdowns = 0, reattaches = 0;
  int resumes = 0;  // resume() calls on a running fake
  int pauses = 0;   // light sleeps
  std::vector<vmm::LightSleepCache> pauseCaches;  // what each pause was asked to do with the cache
  std::string failPause;                // non-empty: pause fails with this
  std::vector<int> bootTapFds, restoreTapFds;
  std::vector<std::string> bootCmdlines;
  std::vector<std::chrono::steady_clock::time_point> sleepCalls;
  std::set<pid_t> alivePids;            // fake processes that "exist"
  pid_t nextPid = 1000;
  // Knobs for the next operations.
  std::string failSleep;                // non-empty: sleep fails with this
  bool skipSnapshotFiles = false;       // sleep "succeeds" but writes nothing
  std::chrono::milliseconds sleepDelay{0};
  std::atomic<bool> sleepInProgress{false};
  std::vector<class FakeVmm*> vmms;     // live fakes (so a test can crash one)

  int count(int FakeWorld::*field) {
    std::lock_guard lock(mutex);
    return this->*field;
  }
};

class FakeVmm : public vmm::Vmm {
 public:
  explicit FakeVmm(std::shared_ptr<FakeWorld> world) : world_(std::move(world)) {}
  ~FakeVmm() override;

  vmm::Hypervisor kind() const override { return vmm::Hypervisor::kQemu; }
  Result<void> boot(const vmm::VmConfig& config) override;
  Result<vmm::PauseInfo> pause(vmm::LightSleepCache cache) override;
  Result<vmm::SnapshotInfo> sleep(const std::filesystem::path& snapshotDir,
                                  const vmm::SnapshotStamp& stamp) override;
  Result<void> resume() override;
  Result<void> prepareRestore(const vmm::VmConfig& config) override;
  Result<void> restore(const vmm::VmConfig& config, const std::filesystem::path& snapshotDir,
                       const vmm::SnapshotStamp& expected) override;
  std::vector<std::filesystem::path> snapshotFiles(
      const vmm::VmConfig&, const std::filesystem::path& snapshotDir) const override {
    return {snapshotDir};
  }
  Result<void> shutdown(std::chrono::milliseconds grace) override;
  Result<void> signal(int signo) override;
  std::optional<vmm::ProcessIdentity> process() const override;
  bool standby() const override { return standby_ && pid_ != 0; }
  Result<void> reattach(const vmm::VmConfig& config, const vmm::ProcessIdentity& process,
                        bool standby) override;
  int exitFd() const override { return exitFd_.get(); }
  vmm::ExitStatus reapExit() override;

  // Makes the current process "exit" with this status (exitFd turns readable).
  void crash(int exitCode, int signal);

 private:
  void spawn(bool standby);
  void forget();

  std::shared_ptr<FakeWorld> world_;
  pid_t pid_ = 0;
  bool standby_ = false;
  UniqueFd exitFd_;
  vmm::ExitStatus pending_;
};

class FakeKernel : public bpf::ScaleToZeroKernel {
 public:
  FakeKernel();
  Result<void> addInstance(uint32_t ifindex, uint32_t vmAddrBe) override;
  Result<void> removeInstance(uint32_t ifindex, uint32_t vmAddrBe) override;
  Result<void> setState(uint32_t ifindex, bpf::InstanceState state) override;
  Result<bpf::InstanceState> state(uint32_t ifindex) const override;
  Result<bpf::InstanceCounters> counters(uint32_t ifindex) const override;
  Result<uint16_t> waitingPort(uint32_t) const override { return uint16_t{0}; }  // no clients here
  int wakeEventFd() const override { return eventFd_.get(); }
  std::vector<bpf::WakeEvent> drainWakeEvents() override;

  // A counted packet toward the VM, with the TC program's SLEEPING -> WAKING
  // compare-and-swap (one event per sleep).
  void packet(uint32_t ifindex);
  // An event as if emitted by the kernel, without touching state.
  void injectEvent(uint32_t ifindex);
  bool registered(uint32_t ifindex) const;
  int addCalls() const;

 private:
  struct Entry {
    bpf::InstanceState state = bpf::InstanceState::kRunning;
    bpf::InstanceCounters counters;
  };
  mutable std::mutex mutex_;
  std::map<uint32_t, Entry> entries_;
  std::vector<bpf::WakeEvent> events_;
  int addCalls_ = 0;
  UniqueFd eventFd_;
};

// Forwards to a FakeKernel the test owns, so kernel state (like pinned maps)
// outlives one agent and a second agent can recover from it.
class KernelRef : public bpf::ScaleToZeroKernel {
 public:
  explicit KernelRef(FakeKernel& k) : k_(k) {}
  Result<void> addInstance(uint32_t i, uint32_t a) override { return k_.addInstance(i, a); }
  Result<void> removeInstance(uint32_t i, uint32_t a) override { return k_.removeInstance(i, a); }
  Result<void> setState(uint32_t i, bpf::InstanceState s) override { return k_.setState(i, s); }
  Result<bpf::InstanceState> state(uint32_t i) const override { return k_.state(i); }
  Result<bpf::InstanceCounters> counters(uint32_t i) const override { return k_.counters(i); }
  Result<uint16_t> waitingPort(uint32_t i) const override { return k_.waitingPort(i); }
  int wakeEventFd() const override { return k_.wakeEventFd(); }
  std::vector<bpf::WakeEvent> drainWakeEvents() override { return k_.drainWakeEvents(); }

 private:
  FakeKernel& k_;
};

class FakeNetwork : public NetworkBackend {
 public:
  Result<Lease> allocateAddress(const std::string& owner) override;
  Result<Lease> reclaimAddress(const std::string& address, const std::string& owner) override;
  Result<void> releaseAddress(const std::string& address) override;
  Result<std::unique_ptr<Tap>> createTap(const std::string& name) override;
  Result<std::unique_ptr<Tap>> reopenTap(const std::string& name) override;
  Result<std::unique_ptr<Tap>> adoptTap(const std::string& name, pid_t holder) override {
    return reopenTap(name);
  }
  Result<void> plumb(const std::string& tapName, const Lease& lease,
                     const std::string& mac) override;
  Result<void> unplumb(const std::string& tapName, const Lease& lease) override;
  std::string macFor(const std::string& address) const override { return "52:54:00:00:00:01"; }

  // Shared with the taps, which outlive nothing but may outlive this.
  struct State {
    std::mutex mutex;
    std::map<std::string, std::string> leases;  // address -> owner
    std::map<std::string, uint32_t> taps;       // live taps by name -> ifindex
    int diverts = 0, reverts = 0;               // sleep-edge queue switches
    std::set<std::string> plumbed;
    uint32_t nextIfindex = 10;
    int nextHost = 2;
  };
  std::shared_ptr<State> state = std::make_shared<State>();
};

std::unique_ptr<FakeNetwork> makeFakeNetwork(std::shared_ptr<FakeNetwork::State> shared);
Lease fakeLease(const std::string& address);

}  // namespace s2z::agent::testing
