// The Agent implementation. Its collaborators are injected (style.md: the
// BPF adapter and the VMM client as interfaces), so the lifecycle logic runs
// in unit tests with fakes; makeAgent (agent.h) wires the real ones.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agent/agent.h"
#include "agent/agent_loop.h"
#include "agent/health_responder.h"
#include "agent/network_backend.h"
#include "agent/standby_budget.h"
#include "agent/vm_instance.h"
#include "bpf/scale_to_zero_kernel.h"
#include "image/image_gc.h"

namespace s2z::agent {

struct AgentDependencies {
  VmmFactory vmmFactory;                                // required
  std::unique_ptr<NetworkBackend> network;              // required
  std::unique_ptr<bpf::ScaleToZeroKernel> kernel;       // null: scale-to-zero off
  std::string problem;                                  // why kernel (or health) is missing
  std::unique_ptr<HealthResponder> responder;           // optional
  std::unique_ptr<bpf::HealthCheckHooks> healthHooks;   // optional
};

class ScaleToZeroAgent final : public Agent {
 public:
  // Starts the loop thread. Fails with kInvalidArgument when a required
  // dependency is missing, kSystem when the loop cannot start.
  // The agent must outlive the instances it hands out.
  static Result<std::unique_ptr<ScaleToZeroAgent>> create(const AgentConfig& config,
                                                          AgentDependencies deps);
  // Stops the loop; VMs keep running (a restarted plugin recovers them).
  ~ScaleToZeroAgent() override;

  Result<std::shared_ptr<Instance>> start(const InstanceSpec& spec, EventSink events) override;
  Result<std::shared_ptr<Instance>> recover(const InstanceRecord& record,
                                            EventSink events) override;
  void forget(const std::string& taskId) override;
  AgentStatus status() const override;
  Result<image::PreparedImage> prepareImage(const std::string& image, const image::PullOptions& options,
                                            const std::function<void(const std::string&)>& progress) override;

 private:
  // Lets instances kick the loop without outliving it.
  struct Kicker {
    std::mutex mutex;
    AgentLoop* loop = nullptr;  // guarded by mutex
    void kick();
  };

  ScaleToZeroAgent(const AgentConfig& config, AgentDependencies deps);
  InstanceDeps instanceDeps();
  std::vector<std::shared_ptr<VmInstance>> snapshot() const;

  const AgentConfig config_;
  AgentDependencies deps_;
  std::shared_ptr<Kicker> kicker_ = std::make_shared<Kicker>();
  StandbyBudget standbys_;    // standby_vmms, shared by the instances
  image::ImageStore images_;  // <stateDir>/images
  std::unique_ptr<image::ImageCollector> imageGc_;  // null: image_gc off

  // mutex_ guards instances_, starting_ (task ids whose start is running)
  // and imageLeases_ (the image each image task runs, until forget()).
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<VmInstance>> instances_;
  std::map<std::string, bool> starting_;
  std::map<std::string, std::shared_ptr<image::ImageLease>> imageLeases_;

  std::unique_ptr<AgentLoop> loop_;  // last: stopped first
};

}  // namespace s2z::agent
