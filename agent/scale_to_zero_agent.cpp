#include "agent/scale_to_zero_agent.h"

#include <spdlog/spdlog.h>

namespace s2z::agent {

void ScaleToZeroAgent::Kicker::kick() {
  std::lock_guard lock(mutex);
  if (loop) loop->kick();
}

Result<std::unique_ptr<ScaleToZeroAgent>> ScaleToZeroAgent::create(const AgentConfig& config,
                                                                   AgentDependencies deps) {
  if (!deps.vmmFactory || !deps.network) {
    return makeError(ErrorCode::kInvalidArgument, "agent: vmm factory and network are required");
  }
  std::unique_ptr<ScaleToZeroAgent> agent(new ScaleToZeroAgent(config, std::move(deps)));
  auto loop = AgentLoop::start(agent->deps_.kernel.get(), config.idlePollInterval,
                               [raw = agent.get()] { return raw->snapshot(); });
  if (!loop.ok()) return loop.error().wrap("agent");
  agent->loop_ = std::move(*loop);
  if (config.imageGc) agent->imageGc_ = std::make_unique<image::ImageCollector>(agent->images_, config.imageGcDelay);
  {
    std::lock_guard lock(agent->kicker_->mutex);
    agent->kicker_->loop = agent->loop_.get();
  }
  return agent;
}

ScaleToZeroAgent::ScaleToZeroAgent(const AgentConfig& config, AgentDependencies deps)
    : config_(config), deps_(std::move(deps)), standbys_(config.standbyVmms),
      images_(config.stateDir / "images") {}

Result<image::PreparedImage> ScaleToZeroAgent::prepareImage(const std::string& image,
                                                            const image::PullOptions& options,
                                                            const std::function<void(const std::string&)>& progress) {
  return images_.prepare(image, options, progress);
}

ScaleToZeroAgent::~ScaleToZeroAgent() {
  {
    std::lock_guard lock(kicker_->mutex);
    kicker_->loop = nullptr;
  }
  loop_.reset();
  imageGc_.reset();
  // Sleeps and wakes run on the instances' workers; they use deps_.
  for (const auto& instance : snapshot()) instance->stopWorker();
}

InstanceDeps ScaleToZeroAgent::instanceDeps() {
  InstanceDeps d;
  d.network = deps_.network.get();
  d.kernel = deps_.kernel.get();
  d.vmmFactory = deps_.vmmFactory;
  d.kickLoop = [kicker = kicker_] { kicker->kick(); };
  d.logHolder.argv = config_.logHolderCommand;
  d.logReaderWait = config_.logReaderWait;
  d.bootGate = config_.bootGate;
  d.standbys = &standbys_;
  d.quarantineKept = config_.quarantineKept;
  return d;
}

std::vector<std::shared_ptr<VmInstance>> ScaleToZeroAgent::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<VmInstance>> out;
  out.reserve(instances_.size());
  for (const auto& [id, instance] : instances_) out.push_back(instance);
  return out;
}

Result<std::shared_ptr<Instance>> ScaleToZeroAgent::start(const InstanceSpec& spec,
                                                          EventSink events) {
  {
    std::lock_guard lock(mutex_);
    if (instances_.count(spec.taskId) || starting_.count(spec.taskId)) {
      return makeError(ErrorCode::kAlreadyExists, "start: task " + spec.taskId + " already exists");
    }
    starting_[spec.taskId] = true;
  }
  auto started = VmInstance::start(config_, spec, std::move(events), instanceDeps());
  std::lock_guard lock(mutex_);
  starting_.erase(spec.taskId);
  if (!started.ok()) return started.error();
  instances_[spec.taskId] = *started;
  if (auto lease = images_.leaseDisk(spec.rootfs)) imageLeases_[spec.taskId] = std::move(lease);
  kicker_->kick();
  return std::shared_ptr<Instance>(*started);
}

Result<std::shared_ptr<Instance>> ScaleToZeroAgent::recover(const InstanceRecord& record,
                                                            EventSink events) {
  const std::string& taskId = record.spec.taskId;
  {
    std::lock_guard lock(mutex_);
    if (auto it = instances_.find(taskId); it != instances_.end()) {
      return std::shared_ptr<Instance>(it->second);
    }
    if (starting_.count(taskId)) {
      return makeError(ErrorCode::kUnavailable, "recover: task " + taskId + " is being set up");
    }
    starting_[taskId] = true;
  }
  auto recovered = VmInstance::recover(record, std::move(events), instanceDeps());
  std::lock_guard lock(mutex_);
  starting_.erase(taskId);
  if (!recovered.ok()) return recovered.error();
  instances_[taskId] = *recovered;
  if (auto lease = images_.leaseDisk(record.spec.rootfs)) imageLeases_[taskId] = std::move(lease);
  kicker_->kick();
  return std::shared_ptr<Instance>(*recovered);
}

void ScaleToZeroAgent::forget(const std::string& taskId) {
  std::lock_guard lock(mutex_);
  instances_.erase(taskId);
  imageLeases_.erase(taskId);
  standbys_.release(taskId);
}

AgentStatus ScaleToZeroAgent::status() const {
  AgentStatus s;
  for (const auto& instance : snapshot()) {
    ++s.instances;
    if (instance->state() == InstanceState::kSleeping) ++s.sleeping;
  }
  s.scaleToZeroReady = deps_.kernel != nullptr;
  s.problem = deps_.problem;
  return s;
}

}  // namespace s2z::agent
