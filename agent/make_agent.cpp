// makeAgent: the real collaborators (host network, KernelScaleToZero, the
// health responder and cgroup hooks, vmm::makeVmm, the installed log FIFO
// holder) behind ScaleToZeroAgent.
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "agent/group_network_backend.h"
#include "agent/log_holder_image.h"
#include "agent/log_holder_install.h"
#include "agent/run_dir.h"
#include "agent/scale_to_zero_agent.h"
#include "bpf/health_check_hooks.h"
#include "bpf/kernel_scale_to_zero.h"

namespace s2z::agent {
namespace {

// Responder + hooks on the health checker's cgroup. Returns why not, or "".
std::string setUpHealthChecks(const AgentConfig& config, AgentDependencies& deps) {
  auto responder = HealthResponder::start();
  if (!responder.ok()) return "health responder: " + responder.error().describe();
  auto hooks = bpf::KernelHealthCheckHooks::attach(config.bpfPinRoot, config.healthCheckCgroup,
                                                   config.healthCheckMark);
  if (!hooks.ok()) return "health check hooks: " + hooks.error().describe();
  auto set = (*hooks)->setResponder((*responder)->addressBe(), (*responder)->port());
  if (!set.ok()) return "health check hooks: " + set.error().describe();
  spdlog::info("agent: health checks from cgroup {} (mark {:#x}) answered on 127.0.0.1:{} "
               "while instances sleep", config.healthCheckCgroup, config.healthCheckMark,
               (*responder)->port());
  deps.responder = std::move(*responder);
  deps.healthHooks = std::move(*hooks);
  return "";
}

}  // namespace

Result<std::unique_ptr<Agent>> makeAgent(const AgentConfig& given) {
  AgentConfig config = given;
  std::error_code ec;
  std::filesystem::create_directories(tasksDir(config.stateDir), ec);
  if (ec) {
    return Error{ErrorCode::kSystem, ec.value(), "agent: create " + tasksDir(config.stateDir).string()};
  }
  // Run dirs hold guest memory: owner-only from tasks/ down (existing ones
  // too). state_dir itself is the operator's and may be shared: left alone.
  if (::chmod(tasksDir(config.stateDir).c_str(), 0700) != 0) {
    return systemError("agent: chmod 0700 " + tasksDir(config.stateDir).string());
  }
  if (config.logHolderCommand.empty()) {
    auto holder = installLogHolder(config.stateDir, logHolderImage());
    if (!holder.ok()) return holder.error().wrap("agent: install the log FIFO holder");
    config.logHolderCommand = {holder->string()};
  }
  AgentDependencies deps;
  deps.vmmFactory = [](vmm::Hypervisor kind) { return vmm::makeVmm(kind); };
  auto network = makeHostNetworkBackend(addressesDir(config.stateDir), config.subnet);
  if (!network.ok()) return network.error().wrap("agent");
  deps.network = std::move(*network);

  auto kernel = bpf::KernelScaleToZero::open(config.bpfPinRoot, config.healthCheckMark);
  if (kernel.ok()) {
    deps.kernel = std::move(*kernel);
    if (!config.healthCheckCgroup.empty()) deps.problem = setUpHealthChecks(config, deps);
  } else {
    deps.problem = "scale-to-zero unavailable: " + kernel.error().describe();
  }
  if (!deps.problem.empty()) spdlog::warn("agent: {}", deps.problem);
  // Nomad group networks (bridge, cni/*) beside the host one; the kernel
  // side, when loaded, answers health checks of their host ports.
  deps.network = makeGroupNetworkBackend(
      std::move(deps.network), dynamic_cast<bpf::KernelScaleToZero*>(deps.kernel.get()));

  auto agent = ScaleToZeroAgent::create(config, std::move(deps));
  if (!agent.ok()) return agent.error();
  return std::unique_ptr<Agent>(std::move(*agent));
}

}  // namespace s2z::agent
