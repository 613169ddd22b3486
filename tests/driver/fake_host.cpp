#include "tests/driver/fake_host.h"

#include <csignal>
#include <thread>

#include <fmt/format.h>

namespace s2z::driver::test {

agent::InstanceRecord FakeInstance::record() const {
  std::lock_guard lock(mu_);
  return record_;
}

agent::InstanceState FakeInstance::state() const {
  std::lock_guard lock(mu_);
  return record_.state;
}

std::optional<agent::ExitInfo> FakeInstance::waitExit(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return exit_.has_value(); });
  return exit_;
}

Result<void> FakeInstance::stop(std::chrono::milliseconds timeout, int signo) {
  {
    std::lock_guard lock(mu_);
    lastStopTimeout_ = timeout;
    lastStopSignal_ = signo;
    if (!exit_) {
      auto now = std::chrono::system_clock::now().time_since_epoch();
      exit_ = agent::ExitInfo{0, timeout.count() == 0 ? SIGKILL : 0, "",
                              std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()};
      record_.state = agent::InstanceState::kExited;
    }
  }
  cv_.notify_all();
  return okResult();
}

Result<void> FakeInstance::destroy() {
  std::lock_guard lock(mu_);
  if (!exit_) return makeError(ErrorCode::kFailedPrecondition, "destroy: instance still running");
  destroyed_ = true;
  return okResult();
}

Result<void> FakeInstance::signal(int signo) {
  std::lock_guard lock(mu_);
  if (exit_) return makeError(ErrorCode::kFailedPrecondition, "signal: instance exited");
  signals_.push_back(signo);
  return okResult();
}

namespace {

class FakeExecSession final : public agent::ExecSession {
 public:
  explicit FakeExecSession(std::shared_ptr<FakeExec> exec) : exec_(std::move(exec)) {}
  ~FakeExecSession() override { exec_->sessionClosed = true; }
  Result<void> writeStdin(std::string data) override {
    exec_->stdinData += data;
    return okResult();
  }
  Result<void> closeStdin() override {
    exec_->stdinClosed = true;
    return okResult();
  }
  Result<void> resize(uint32_t, uint32_t) override { return okResult(); }
  Result<void> signal(int signo) override {
    exec_->signals.push_back(signo);
    return okResult();
  }
  Result<agent::ExecEvent> next(std::chrono::milliseconds timeout) override {
    if (next_ < exec_->events.size()) return exec_->events[next_++];
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(20)));
    return makeError(ErrorCode::kTimeout, "no output");
  }

 private:
  std::shared_ptr<FakeExec> exec_;
  size_t next_ = 0;
};

}  // namespace

Result<std::unique_ptr<agent::ExecSession>> FakeInstance::exec(const agent::ExecSpec& spec) {
  std::lock_guard lock(mu_);
  exec_->lastSpec = spec;
  if (exec_->error) return *exec_->error;
  if (record_.state == agent::InstanceState::kSleeping && !spec.wakeIfAsleep) {
    return std::unique_ptr<agent::ExecSession>();
  }
  ++exec_->runs;
  return std::unique_ptr<agent::ExecSession>(std::make_unique<FakeExecSession>(exec_));
}

agent::ResourceUsage FakeInstance::usage() {
  std::lock_guard lock(mu_);
  return usage_;
}

std::map<std::string, std::string> FakeInstance::attributes() const {
  std::lock_guard lock(mu_);
  return {{"tap", record_.network.tapName}, {"packets", "7"}};
}

void FakeInstance::exitWith(int code, int signo) {
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::system_clock::now().time_since_epoch();
    exit_ = agent::ExitInfo{code, signo, "",
                            std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()};
    record_.state = agent::InstanceState::kExited;
  }
  cv_.notify_all();
}

void FakeInstance::setState(agent::InstanceState s) {
  std::lock_guard lock(mu_);
  record_.state = s;
}

void FakeInstance::setUsage(const agent::ResourceUsage& u) {
  std::lock_guard lock(mu_);
  usage_ = u;
}

void FakeInstance::emit(const std::string& message, std::map<std::string, std::string> annotations) {
  sink_(agent::InstanceEvent{message, std::move(annotations), std::chrono::system_clock::now()});
}

std::vector<int> FakeInstance::signals() const {
  std::lock_guard lock(mu_);
  return signals_;
}

bool FakeInstance::destroyed() const {
  std::lock_guard lock(mu_);
  return destroyed_;
}

std::chrono::milliseconds FakeInstance::lastStopTimeout() const {
  std::lock_guard lock(mu_);
  return lastStopTimeout_;
}

int FakeInstance::lastStopSignal() const {
  std::lock_guard lock(mu_);
  return lastStopSignal_;
}

std::shared_ptr<FakeInstance> FakeAgentState::instance(const std::string& taskId) {
  std::lock_guard lock(mu);
  auto it = instances.find(taskId);
  return it == instances.end() ? nullptr : it->second;
}

Result<std::shared_ptr<agent::Instance>> FakeAgent::start(const agent::InstanceSpec& spec,
                                                          agent::EventSink events) {
  std::lock_guard lock(state_->mu);
  if (state_->startError) {
    Error e = *state_->startError;
    state_->startError.reset();
    return e;
  }
  state_->started.push_back(spec);
  agent::InstanceRecord record;
  record.spec = spec;
  record.network.tapName = "s2z" + spec.name.substr(0, 8);
  record.network.address = fmt::format("10.89.0.{}", state_->nextAddress++);
  record.network.gateway = "10.89.0.1";
  record.network.mac = "52:54:00:00:00:01";
  record.runDir = "/run/fake/" + spec.name;
  record.state = agent::InstanceState::kRunning;
  record.vmm.pid = 4242;
  record.vmm.startTime = 99;
  record.snapshotDir = "/run/fake/" + spec.name + "/snapshot";
  record.startedAtUnixNs = 1714557600LL * 1000000000LL;
  auto instance = std::make_shared<FakeInstance>(record, std::move(events));
  state_->instances[spec.taskId] = instance;
  state_->alive[spec.taskId] = record;
  return std::shared_ptr<agent::Instance>(instance);
}

Result<std::shared_ptr<agent::Instance>> FakeAgent::recover(const agent::InstanceRecord& record,
                                                            agent::EventSink events) {
  std::lock_guard lock(state_->mu);
  const std::string& id = record.spec.taskId;
  if (auto it = state_->instances.find(id); it != state_->instances.end()) {
    return std::shared_ptr<agent::Instance>(it->second);
  }
  auto alive = state_->alive.find(id);
  if (alive == state_->alive.end() || alive->second.vmm.pid != record.vmm.pid) {
    return makeError(ErrorCode::kNotFound, fmt::format("vmm process {} is gone", record.vmm.pid));
  }
  auto instance = std::make_shared<FakeInstance>(record, std::move(events));
  state_->instances[id] = instance;
  return std::shared_ptr<agent::Instance>(instance);
}

Result<image::PreparedImage> FakeAgent::prepareImage(const std::string& image, const image::PullOptions&,
                                                     const std::function<void(const std::string&)>& progress) {
  std::lock_guard lock(state_->mu);
  state_->imagesAsked.push_back(image);
  if (progress) progress("Downloading image " + image);
  return state_->image;
}

void FakeAgent::forget(const std::string& taskId) {
  std::lock_guard lock(state_->mu);
  state_->forgotten.push_back(taskId);
  state_->instances.erase(taskId);
  state_->alive.erase(taskId);
}

agent::AgentStatus FakeAgent::status() const {
  std::lock_guard lock(state_->mu);
  agent::AgentStatus s;
  s.instances = static_cast<unsigned>(state_->instances.size());
  for (const auto& [id, inst] : state_->instances) {
    if (inst->state() == agent::InstanceState::kSleeping) ++s.sleeping;
  }
  s.scaleToZeroReady = true;
  return s;
}

Result<std::unique_ptr<agent::Agent>> FakeHost::makeAgent(const agent::AgentConfig& config) {
  ++*makeAgentCalls;
  *lastAgentConfig = config;
  return std::unique_ptr<agent::Agent>(std::make_unique<FakeAgent>(state_));
}

Result<vmm::HypervisorInfo> FakeHost::probeHypervisor(vmm::Hypervisor,
                                                      const std::filesystem::path&) {
  return vmm::HypervisorInfo{"7.2.19"};
}

vmm::AcceleratorProbe FakeHost::detectAccelerator() {
  return vmm::AcceleratorProbe{vmm::Accelerator::kTcg, "no /dev/kvm (fake)"};
}

Result<vmm::kata::KataDefaults> FakeHost::loadKataConfig(const std::filesystem::path& path) {
  if (*kataError) return **kataError;
  if (*kata) return **kata;
  return makeError(ErrorCode::kNotFound, "kata config \"" + path.string() + "\" not found");
}

}  // namespace s2z::driver::test
