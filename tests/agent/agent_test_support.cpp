#include "tests/agent/agent_test_support.h"
#include "tests/err_text.h"

#include <doctest/doctest.h>
#include <stdlib.h>

namespace s2z::agent::testing {

Harness::Harness() {
  char tmpl[] = "/tmp/s2z-agent-unit-XXXXXX";
  char* dir = ::mkdtemp(tmpl);
  REQUIRE(dir != nullptr);
  stateDir = dir;
  config.stateDir = stateDir;
  config.idlePollInterval = std::chrono::milliseconds(10);
  // No client ever waits on a fake tap: a cold boot's gate opens at once.
  config.bootGate.clientWait = std::chrono::milliseconds(0);
  // These tests are about snapshots and standbys; the tiers have their own.
  config.standbyVmms = 16;
}

Harness::~Harness() {
  agent.reset();
  std::error_code ec;
  std::filesystem::remove_all(stateDir, ec);
}

void Harness::makeAgent(bool withKernel) {
  agent.reset();
  AgentDependencies deps;
  deps.vmmFactory = [w = world](vmm::Hypervisor) { return std::make_unique<FakeVmm>(w); };
  deps.network = makeFakeNetwork(net);
  if (withKernel) deps.kernel = std::make_unique<KernelRef>(kernel);
  else deps.problem = "no kernel in this test";
  auto created = ScaleToZeroAgent::create(config, std::move(deps));
  REQUIRE_MESSAGE(created.ok(), s2z::tests::errText(created));
  agent = std::move(*created);
}

InstanceSpec Harness::spec(const std::string& taskId, bool scaleToZero,
                           std::chrono::milliseconds idleTimeout) const {
  InstanceSpec s;
  s.taskId = taskId;
  s.name = "web";
  s.binary = "/usr/bin/qemu-system-x86_64";
  s.kernel = "/guest/vmlinuz";
  s.cmdline = "console=ttyS0";
  s.scaleToZero = scaleToZero;
  s.idleTimeout = idleTimeout;
  s.sleepTier = SleepTier::kDeep;
  return s;
}

std::shared_ptr<Instance> Harness::startOk(const InstanceSpec& s) {
  auto started = agent->start(s, events.sink());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  return *started;
}

InstanceRecord Harness::abandon(std::shared_ptr<Instance> instance) {
  InstanceRecord rec = instance->record();
  agent.reset();
  instance.reset();
  return rec;
}

FakeVmm* Harness::onlyVmm() {
  std::lock_guard lock(world->mutex);
  REQUIRE(world->vmms.size() == 1);
  return world->vmms.front();
}

}  // namespace s2z::agent::testing
