// Fakes of the agent, its instances and the host for driver unit tests. They
// keep the contracts of agent/instance.h (waitExit blocks, stop makes the
// instance exit, destroy after stop) so the RPC logic is exercised for real.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "driver/host.h"

namespace s2z::driver::test {

// What the next exec on a FakeInstance does, and what it saw.
struct FakeExec {
  std::vector<agent::ExecEvent> events;  // replayed in order by next()
  bool hang = false;                     // after the events: nothing until SIGKILL
  std::optional<Error> error;            // exec() fails with it
  // Observed.
  int runs = 0;
  agent::ExecSpec lastSpec;
  std::string stdinData;
  bool stdinClosed = false;
  std::vector<int> signals;
  bool sessionClosed = false;
};

class FakeInstance final : public agent::Instance {
 public:
  FakeInstance(agent::InstanceRecord record, agent::EventSink sink)
      : record_(std::move(record)), sink_(std::move(sink)) {}

  agent::InstanceRecord record() const override;
  agent::InstanceState state() const override;
  std::optional<agent::ExitInfo> waitExit(std::chrono::milliseconds timeout) override;
  Result<void> stop(std::chrono::milliseconds timeout, int signo) override;
  Result<void> destroy() override;
  Result<void> signal(int signo) override;
  Result<std::unique_ptr<agent::ExecSession>> exec(const agent::ExecSpec& spec) override;
  agent::ResourceUsage usage() override;
  std::map<std::string, std::string> attributes() const override;

  // Test controls.
  void exitWith(int code, int signo = 0);
  // Shared with the sessions exec() creates: set it up, then inspect it.
  std::shared_ptr<FakeExec> fakeExec() const { return exec_; }
  void setState(agent::InstanceState s);
  void setUsage(const agent::ResourceUsage& u);
  void emit(const std::string& message, std::map<std::string, std::string> annotations = {});
  std::vector<int> signals() const;
  bool destroyed() const;
  std::chrono::milliseconds lastStopTimeout() const;
  int lastStopSignal() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  agent::InstanceRecord record_;
  agent::EventSink sink_;
  std::optional<agent::ExitInfo> exit_;
  agent::ResourceUsage usage_;
  std::vector<int> signals_;
  bool destroyed_ = false;
  std::shared_ptr<FakeExec> exec_ = std::make_shared<FakeExec>();
  std::chrono::milliseconds lastStopTimeout_{-1};
  int lastStopSignal_ = -1;
};

// Shared between the test and the agent the plugin owns.
struct FakeAgentState {
  std::mutex mu;
  std::optional<Error> startError;       // next start() fails with it
  std::vector<agent::InstanceSpec> started;
  std::map<std::string, std::shared_ptr<FakeInstance>> instances;  // by task id
  std::map<std::string, agent::InstanceRecord> alive;  // what recover() can find, by task id
  std::vector<std::string> forgotten;
  // What prepareImage() answers (and the images it was asked for).
  Result<image::PreparedImage> image = makeError(ErrorCode::kNotFound, "no image in the fake");
  std::vector<std::string> imagesAsked;
  int nextAddress = 2;

  std::shared_ptr<FakeInstance> instance(const std::string& taskId);
};

class FakeAgent final : public agent::Agent {
 public:
  explicit FakeAgent(std::shared_ptr<FakeAgentState> state) : state_(std::move(state)) {}
  Result<std::shared_ptr<agent::Instance>> start(const agent::InstanceSpec& spec,
                                                 agent::EventSink events) override;
  Result<std::shared_ptr<agent::Instance>> recover(const agent::InstanceRecord& record,
                                                   agent::EventSink events) override;
  void forget(const std::string& taskId) override;
  agent::AgentStatus status() const override;
  Result<image::PreparedImage> prepareImage(const std::string& image, const image::PullOptions& options,
                                            const std::function<void(const std::string&)>& progress) override;

 private:
  std::shared_ptr<FakeAgentState> state_;
};

class FakeHost final : public Host {
 public:
  explicit FakeHost(std::shared_ptr<FakeAgentState> state) : state_(std::move(state)) {}
  Result<std::unique_ptr<agent::Agent>> makeAgent(const agent::AgentConfig& config) override;
  Result<vmm::HypervisorInfo> probeHypervisor(vmm::Hypervisor kind,
                                              const std::filesystem::path& binary) override;
  vmm::AcceleratorProbe detectAccelerator() override;
  Result<vmm::kata::KataDefaults> loadKataConfig(const std::filesystem::path& path) override;

  // Observed by tests.
  std::shared_ptr<int> makeAgentCalls = std::make_shared<int>(0);
  std::shared_ptr<agent::AgentConfig> lastAgentConfig = std::make_shared<agent::AgentConfig>();
  std::shared_ptr<std::optional<vmm::kata::KataDefaults>> kata =
      std::make_shared<std::optional<vmm::kata::KataDefaults>>();
  std::shared_ptr<std::optional<Error>> kataError = std::make_shared<std::optional<Error>>();

 private:
  std::shared_ptr<FakeAgentState> state_;
};

}  // namespace s2z::driver::test
