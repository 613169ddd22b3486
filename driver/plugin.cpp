#include "driver/plugin.h"

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "driver/binary_lookup.h"

namespace s2z::driver {
namespace {

double readCpuMhz() {
  std::ifstream in("/proc/cpuinfo");
  std::stringstream text;
  text << in.rdbuf();
  return parseCpuMhz(text.str());
}

agent::AgentConfig agentConfigFrom(const PluginConfig& c) {
  agent::AgentConfig out;
  out.stateDir = c.stateDir;
  out.subnet = c.subnet;
  out.healthCheckMark = c.healthCheckMark;
  out.healthCheckCgroup = c.healthCheckCgroup;
  out.imageGc = c.imageGc.enabled;
  out.imageGcDelay = c.imageGc.delay;
  out.standbyVmms = c.standbyVmms;
  out.quarantineKept = c.quarantineKept;
  return out;
}

}  // namespace

double parseCpuMhz(const std::string& cpuinfo) {
  std::istringstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    try {
      double mhz = std::stod(line.substr(colon + 1));
      if (mhz > 0) return mhz;
    } catch (const std::exception&) {
    }
  }
  return 0;
}

Plugin::Plugin(std::unique_ptr<Host> host, PluginOptions options)
    : options_(std::move(options)),
      cpuMhzPerCore_(options_.cpuMhzPerCore > 0 ? options_.cpuMhzPerCore : readCpuMhz()),
      host_(std::move(host)) {}

Plugin::~Plugin() = default;

void Plugin::setConfig(PluginConfig config) {
  std::lock_guard lock(mu_);
  if (agent_) {
    auto before = agentConfigFrom(config_), after = agentConfigFrom(config);
    if (before.stateDir != after.stateDir || before.subnet != after.subnet ||
        before.healthCheckMark != after.healthCheckMark ||
        before.healthCheckCgroup != after.healthCheckCgroup) {
      spdlog::warn(
          "SetConfig changed state_dir/subnet/health_check_* after the agent started; the new "
          "values apply after the plugin restarts");
    }
  }
  config_ = std::move(config);
  configured_ = true;
}

PluginConfig Plugin::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

bool Plugin::configured() const {
  std::lock_guard lock(mu_);
  return configured_;
}

Result<agent::Agent*> Plugin::agent() {
  {
    std::lock_guard lock(mu_);
    if (agent_) return agent_.get();
  }
  std::lock_guard create(agentCreateMu_);
  PluginConfig config;
  {
    std::lock_guard lock(mu_);
    if (agent_) return agent_.get();
    if (!configured_) spdlog::warn("creating the agent before any SetConfig: using defaults");
    config = config_;
  }
  auto made = host_->makeAgent(agentConfigFrom(config));
  if (!made.ok()) return made.error().wrap("create agent");
  std::lock_guard lock(mu_);
  agent_ = std::move(made).value();
  auto status = agent_->status();
  spdlog::info("agent started: state_dir={} subnet={} scale_to_zero={}{}", config.stateDir.string(),
               config.subnet, status.scaleToZeroReady,
               status.problem.empty() ? "" : " (" + status.problem + ")");
  return agent_.get();
}

agent::Agent* Plugin::agentIfCreated() const {
  std::lock_guard lock(mu_);
  return agent_.get();
}

vmm::AcceleratorProbe Plugin::detectedAccelerator() {
  {
    std::lock_guard lock(mu_);
    if (accelerator_) return *accelerator_;
  }
  // Detection may take a while; run it unlocked (a rare duplicate is harmless).
  vmm::AcceleratorProbe probe = host_->detectAccelerator();
  std::lock_guard lock(mu_);
  if (!accelerator_) accelerator_ = probe;
  return *accelerator_;
}

vmm::Accelerator Plugin::acceleratorFor(const PluginConfig& config) {
  switch (config.accelerator) {
    case AcceleratorChoice::kKvm: return vmm::Accelerator::kKvm;
    case AcceleratorChoice::kTcg: return vmm::Accelerator::kTcg;
    case AcceleratorChoice::kAuto: break;
  }
  return detectedAccelerator().accelerator;
}

std::string Plugin::pathEnv() const {
  return options_.pathEnv ? *options_.pathEnv : currentPathEnv();
}

}  // namespace s2z::driver
