#include "tests/agent/fakes.h"

#include <sys/eventfd.h>
#include <time.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

namespace s2z::agent::testing {
namespace {

uint64_t nowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

void signalFd(int fd) {
  uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

}  // namespace

// --- FakeVmm ---

FakeVmm::~FakeVmm() {
  std::lock_guard lock(world_->mutex);
  auto& v = world_->vmms;
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void FakeVmm::spawn(bool standby) {
  std::lock_guard lock(world_->mutex);
  pid_ = world_->nextPid++;
  world_->alivePids.insert(pid_);
  if (std::find(world_->vmms.begin(), world_->vmms.end(), this) == world_->vmms.end()) {
    world_->vmms.push_back(this);
  }
  standby_ = standby;
  exitFd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  pending_ = {};
}

void FakeVmm::forget() {
  std::lock_guard lock(world_->mutex);
  world_->alivePids.erase(pid_);
  pid_ = 0;
  standby_ = false;
  exitFd_.reset();
}

Result<void> FakeVmm::boot(const vmm::VmConfig& config) {
  if (pid_ != 0) return makeError(ErrorCode::kFailedPrecondition, "fake: already running");
  {
    std::lock_guard lock(world_->mutex);
    ++world_->boots;
    world_->bootTapFds.push_back(config.tapFd);
    world_->bootCmdlines.push_back(config.cmdline);
  }
  spawn(false);
  return okResult();
}

Result<vmm::SnapshotInfo> FakeVmm::sleep(const std::filesystem::path& snapshotDir,
                                         const vmm::SnapshotStamp& stamp) {
  if (pid_ == 0 || standby_) return makeError(ErrorCode::kFailedPrecondition, "fake: not running");
  std::string fail;
  bool skipFiles;
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(world_->mutex);
    ++world_->sleeps;
    world_->sleepCalls.push_back(std::chrono::steady_clock::now());
    fail = world_->failSleep;
    skipFiles = world_->skipSnapshotFiles;
    delay = world_->sleepDelay;
  }
  world_->sleepInProgress = true;
  std::this_thread::sleep_for(delay);
  world_->sleepInProgress = false;
  if (!fail.empty()) return makeError(ErrorCode::kVmmError, fail);
  if (!skipFiles) {
    std::filesystem::create_directories(snapshotDir);
    std::ofstream(snapshotDir / "state") << "device state";
  }
  // A real manifest (vmm/snapshot_manifest.h) of the fake's state file: the
  // agent's recovery and this fake's restore check it as a backend would.
  if (!skipFiles) {
    auto state = vmm::describeSnapshotFile(snapshotDir, "state", vmm::FileCheck::kContent);
    if (!state.ok()) return state.error();
    S2Z_TRY(vmm::writeSnapshotManifest(snapshotDir, {stamp, {*state}}), "fake sleep");
  }
  forget();
  return vmm::SnapshotInfo{snapshotDir, 12, std::chrono::microseconds(3000)};
}

Result<vmm::PauseInfo> FakeVmm::pause(vmm::LightSleepCache cache) {
  if (pid_ == 0 || standby_) return makeError(ErrorCode::kFailedPrecondition, "fake: not running");
  std::lock_guard lock(world_->mutex);
  ++world_->pauses;
  world_->pauseCaches.push_back(cache);
  if (!world_->failPause.empty()) return makeError(ErrorCode::kVmmError, world_->failPause);
  const uint64_t cached = cache == vmm::LightSleepCache::kDrop ? 0 : 64 << 20;
  const uint64_t unmapped = cache == vmm::LightSleepCache::kMapped ? 0 : 64 << 20;
  return vmm::PauseInfo{unmapped, cached, std::chrono::microseconds(2000)};
}

Result<void> FakeVmm::resume() {
  if (pid_ == 0 || standby_) return makeError(ErrorCode::kFailedPrecondition, "fake: not running");
  std::lock_guard lock(world_->mutex);
  ++world_->resumes;
  return okResult();
}

Result<void> FakeVmm::prepareRestore(const vmm::VmConfig& config) {
  if (pid_ != 0) return okResult();
  {
    std::lock_guard lock(world_->mutex);
    ++world_->standbys;
  }
  spawn(true);
  return okResult();
}

Result<void> FakeVmm::restore(const vmm::VmConfig& config, const std::filesystem::path& snapshotDir,
                              const vmm::SnapshotStamp& expected) {
  if (pid_ != 0 && !standby_) return makeError(ErrorCode::kFailedPrecondition, "fake: running");
  std::error_code ec;
  if (!std::filesystem::exists(snapshotDir / "state", ec)) {
    forget();
    return makeError(ErrorCode::kNotFound, "snapshot " + snapshotDir.string() + " missing");
  }
  std::string content;
  std::getline(std::ifstream(snapshotDir / "state"), content);
  if (content == "corrupt") {
    forget();  // like a real backend: no VMM left after a failed restore
    return makeError(ErrorCode::kVmmError, "snapshot " + snapshotDir.string() + " is corrupt");
  }
  if (auto checked = vmm::verifySnapshot(snapshotDir, expected); !checked.ok()) {
    forget();
    return checked.error();
  }
  {
    std::lock_guard lock(world_->mutex);
    ++world_->restores;
    world_->restoreTapFds.push_back(config.tapFd);
  }
  if (pid_ == 0) spawn(false);
  standby_ = false;
  return okResult();
}

Result<void> FakeVmm::shutdown(std::chrono::milliseconds) {
  if (pid_ == 0) return okResult();
  {
    std::lock_guard lock(world_->mutex);
    ++world_->shutdowns;
  }
  forget();
  return okResult();
}

Result<void> FakeVmm::signal(int) {
  if (pid_ == 0) return makeError(ErrorCode::kFailedPrecondition, "fake: no process");
  return okResult();
}

std::optional<vmm::ProcessIdentity> FakeVmm::process() const {
  if (pid_ == 0) return std::nullopt;
  return vmm::ProcessIdentity{pid_, 77};
}

Result<void> FakeVmm::reattach(const vmm::VmConfig&, const vmm::ProcessIdentity& process,
                               bool standby) {
  {
    std::lock_guard lock(world_->mutex);
    ++world_->reattaches;
    if (!world_->alivePids.count(process.pid)) {
      return makeError(ErrorCode::kNotFound, "fake: pid " + std::to_string(process.pid) + " gone");
    }
    if (std::find(world_->vmms.begin(), world_->vmms.end(), this) == world_->vmms.end()) {
      world_->vmms.push_back(this);
    }
  }
  pid_ = process.pid;
  standby_ = standby;
  exitFd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  return okResult();
}

vmm::ExitStatus FakeVmm::reapExit() {
  vmm::ExitStatus st;
  {
    std::lock_guard lock(world_->mutex);
    st = pending_;
  }
  forget();
  return st;
}

void FakeVmm::crash(int exitCode, int signal) {
  {
    std::lock_guard lock(world_->mutex);
    pending_ = vmm::ExitStatus{exitCode, signal, true};
    signalFd(exitFd_.get());  // under the lock: reapExit closes it under the lock too
  }
}

// --- FakeKernel ---

FakeKernel::FakeKernel() : eventFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Result<void> FakeKernel::addInstance(uint32_t ifindex, uint32_t) {
  std::lock_guard lock(mutex_);
  ++addCalls_;
  entries_.try_emplace(ifindex);
  return okResult();
}

Result<void> FakeKernel::removeInstance(uint32_t ifindex, uint32_t) {
  std::lock_guard lock(mutex_);
  entries_.erase(ifindex);
  return okResult();
}

Result<void> FakeKernel::setState(uint32_t ifindex, bpf::InstanceState state) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(ifindex);
  if (it == entries_.end()) return makeError(ErrorCode::kNotFound, "fake kernel: no instance");
  it->second.state = state;
  return okResult();
}

Result<bpf::InstanceState> FakeKernel::state(uint32_t ifindex) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(ifindex);
  if (it == entries_.end()) return makeError(ErrorCode::kNotFound, "fake kernel: no instance");
  return it->second.state;
}

Result<bpf::InstanceCounters> FakeKernel::counters(uint32_t ifindex) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(ifindex);
  if (it == entries_.end()) return makeError(ErrorCode::kNotFound, "fake kernel: no instance");
  return it->second.counters;
}

std::vector<bpf::WakeEvent> FakeKernel::drainWakeEvents() {
  std::lock_guard lock(mutex_);
  uint64_t count;
  (void)!::read(eventFd_.get(), &count, sizeof count);
  return std::exchange(events_, {});
}

void FakeKernel::packet(uint32_t ifindex) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(ifindex);
  if (it == entries_.end()) return;
  auto& e = it->second;
  ++e.counters.packets;
  e.counters.bytes += 60;
  e.counters.lastActivityNs = nowNs();
  if (e.state == bpf::InstanceState::kSleeping) {
    e.state = bpf::InstanceState::kWaking;
    events_.push_back({ifindex, e.counters.lastActivityNs});
    signalFd(eventFd_.get());
  }
}

void FakeKernel::injectEvent(uint32_t ifindex) {
  std::lock_guard lock(mutex_);
  events_.push_back({ifindex, nowNs()});
  signalFd(eventFd_.get());
}

bool FakeKernel::registered(uint32_t ifindex) const {
  std::lock_guard lock(mutex_);
  return entries_.count(ifindex) > 0;
}

int FakeKernel::addCalls() const {
  std::lock_guard lock(mutex_);
  return addCalls_;
}

// --- FakeNetwork ---

namespace {

class FakeTap : public Tap {
 public:
  FakeTap(std::shared_ptr<FakeNetwork::State> state, std::string name, uint32_t ifindex)
      : state_(std::move(state)), name_(std::move(name)), ifindex_(ifindex),
        fd_(::eventfd(0, EFD_CLOEXEC)) {}
  int fd() const override { return fd_.get(); }
  const std::string& name() const override { return name_; }
  uint32_t ifindex() const override { return ifindex_; }
  Result<void> destroy() override {
    std::lock_guard lock(state_->mutex);
    state_->taps.erase(name_);
    fd_.reset();
    previous_.reset();
    return okResult();
  }
  // A fresh "queue" is a fresh eventfd, as a fresh tap queue is a new file.
  Result<void> divert() override {
    std::lock_guard lock(state_->mutex);
    if (previous_) return makeError(ErrorCode::kInternal, "already diverted");
    ++state_->diverts;
    previous_ = std::move(fd_);
    fd_.reset(::eventfd(0, EFD_CLOEXEC));
    return okResult();
  }
  void commitDivert() override { previous_.reset(); }
  Result<void> revertDivert() override {
    std::lock_guard lock(state_->mutex);
    if (!previous_) return okResult();
    ++state_->reverts;
    fd_ = std::move(previous_);
    return okResult();
  }
  size_t discardQueued() override { return 0; }  // an eventfd holds no frames

 private:
  std::shared_ptr<FakeNetwork::State> state_;
  std::string name_;
  uint32_t ifindex_;
  UniqueFd fd_;
  UniqueFd previous_;
};

}  // namespace

Lease fakeLease(const std::string& address) {
  return Lease{address, "10.89.0.1", 24, "255.255.255.0"};
}

Result<Lease> FakeNetwork::allocateAddress(const std::string& owner) {
  std::lock_guard lock(state->mutex);
  std::string address = "10.89.0." + std::to_string(state->nextHost++);
  state->leases[address] = owner;
  return fakeLease(address);
}

Result<Lease> FakeNetwork::reclaimAddress(const std::string& address, const std::string& owner) {
  std::lock_guard lock(state->mutex);
  auto it = state->leases.find(address);
  if (it != state->leases.end() && it->second != owner) {
    return makeError(ErrorCode::kAlreadyExists, address + " belongs to " + it->second);
  }
  state->leases[address] = owner;
  return fakeLease(address);
}

Result<void> FakeNetwork::releaseAddress(const std::string& address) {
  std::lock_guard lock(state->mutex);
  state->leases.erase(address);
  return okResult();
}

Result<std::unique_ptr<Tap>> FakeNetwork::createTap(const std::string& name) {
  std::lock_guard lock(state->mutex);
  auto [it, inserted] = state->taps.try_emplace(name, state->nextIfindex);
  if (inserted) ++state->nextIfindex;
  return std::unique_ptr<Tap>(std::make_unique<FakeTap>(state, name, it->second));
}

Result<std::unique_ptr<Tap>> FakeNetwork::reopenTap(const std::string& name) {
  std::lock_guard lock(state->mutex);
  auto it = state->taps.find(name);
  if (it == state->taps.end()) return makeError(ErrorCode::kNotFound, "no tap " + name);
  return std::unique_ptr<Tap>(std::make_unique<FakeTap>(state, name, it->second));
}

Result<void> FakeNetwork::plumb(const std::string& tapName, const Lease&, const std::string&) {
  std::lock_guard lock(state->mutex);
  state->plumbed.insert(tapName);
  return okResult();
}

Result<void> FakeNetwork::unplumb(const std::string& tapName, const Lease&) {
  std::lock_guard lock(state->mutex);
  state->plumbed.erase(tapName);
  return okResult();
}

std::unique_ptr<FakeNetwork> makeFakeNetwork(std::shared_ptr<FakeNetwork::State> shared) {
  auto net = std::make_unique<FakeNetwork>();
  net->state = std::move(shared);
  return net;
}

}  // namespace s2z::agent::testing
