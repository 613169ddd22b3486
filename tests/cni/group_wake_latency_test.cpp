// Wake latency of a VM task in Nomad's group network beside the same task
// in host networking, per sleep tier: the same agent, guest and idle
// timeout; each cycle waits for "Sleeping", then times one GET (connect to
// response) from the stand-in host. Prints a table; checks every wake is
// answered with no retransmit.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <sstream>

#include "agent/agent.h"
#include "tests/agent/agent_test_support.h"
#include "tests/agent/integration_env.h"
#include "tests/cni/nomad_bridge.h"
#include "tests/cni/stand_in_host.h"

namespace s2z::cni_test {
namespace {

using namespace std::chrono_literals;
using agent::testing::EventLog;
using agent::testing::httpGet;
using agent::testing::IntegrationEnv;
using agent::testing::waitUntil;

constexpr int kCycles = 3;
constexpr auto kIdle = 2s;

struct Timings {
  std::vector<double> requestMs, agentWakeMs;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Boots `spec`, then kCycles times: sleep, one timed request to address:port.
Timings measure(agent::Agent& agent, agent::InstanceSpec spec, const std::string& address, int port) {
  Timings t;
  EventLog events;
  auto started = agent.start(spec, events.sink());
  REQUIRE_MESSAGE(started.ok(), started.error().describe());
  auto inst = *started;
  const std::string target = address.empty() ? inst->record().network.address : address;
  REQUIRE(waitUntil([&] { return httpGet(target, port, "/", 1s).status == 200; }, 60s));
  for (size_t i = 1; i <= kCycles; ++i) {
    REQUIRE(waitUntil([&] { return events.find("Sleeping").size() >= i; }, kIdle + 20s));
    auto r = httpGet(target, port, "/", 10s);
    CHECK(r.status == 200);
    CHECK(r.retransmits == 0);
    REQUIRE(waitUntil([&] { return events.find("Woken").size() >= i; }, 5s));
    t.requestMs.push_back(r.totalMs);
    auto woken = events.find("Woken").back().annotations;
    if (woken.count("wake_ms")) t.agentWakeMs.push_back(std::stod(woken.at("wake_ms")));
  }
  (void)inst->stop(2s, 0);
  CHECK(inst->destroy().ok());
  agent.forget(spec.taskId);
  return t;
}

TEST_CASE("wake latency: group network beside host networking, both sleep tiers") {
  if (!agent::testing::guestAvailable()) FAIL("test guest missing in " << agent::testing::guestDir());
  IntegrationEnv env("grplat");
  {
    auto node = addNodeAddress();
    REQUIRE_MESSAGE(node.ok(), node.error().describe());
  }
  const std::string tag = std::to_string(::getpid());
  auto a = CniAlloc::add("lat-" + tag, "s2zt-lat-" + tag, {{28080, 8080, kNodeAddress}},
                         env.stateDir().string() + "/cni");
  REQUIRE_MESSAGE(a.ok(), a.error().describe());

  agent::AgentConfig config;
  config.stateDir = env.stateDir();
  config.subnet = "10.89.0.0/24";
  config.idlePollInterval = 50ms;
  config.bpfPinRoot = env.pinRoot();
  auto made = agent::makeAgent(config);
  REQUIRE_MESSAGE(made.ok(), made.error().describe());
  auto& agentRef = **made;

  std::ostringstream table;
  table << "mode   tier   request ms (median of " << kCycles << ")   agent wake_ms (median)\n";
  for (auto tier : {agent::SleepTier::kLight, agent::SleepTier::kDeep}) {
    for (bool group : {false, true}) {
      agent::InstanceSpec spec;
      spec.taskId = std::string("lat-") + (group ? "group-" : "host-") + agent::sleepTierName(tier) + "-" + tag;
      spec.name = "web";
      spec.binary = "/usr/bin/qemu-system-x86_64";
      spec.kernel = agent::testing::guestDir() / "vmlinuz";
      spec.initrd = agent::testing::guestDir() / "initrd.img";
      spec.cmdline = "console=ttyS0 quiet panic=-1";
      spec.memoryMib = 256;
      spec.stdoutPath = env.stateDir() / (spec.taskId + ".console");
      std::ofstream(spec.stdoutPath, std::ios::app).close();
      spec.scaleToZero = true;
      spec.idleTimeout = kIdle;
      spec.sleepTier = tier;
      if (group) spec.group.netnsPath = (*a)->netnsPath();
      Timings t = group ? measure(agentRef, spec, kNodeAddress, 28080) : measure(agentRef, spec, "", 8080);
      table << (group ? "group  " : "host   ") << agent::sleepTierName(tier) << "  " << median(t.requestMs)
            << "   " << median(t.agentWakeMs) << "\n";
    }
  }
  MESSAGE("\n" << table.str());
}

}  // namespace
}  // namespace s2z::cni_test
