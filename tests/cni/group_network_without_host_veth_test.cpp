// CNI networks without a host veth: a cni/<name> network made by Debian's
// macvlan (or ipvlan) plugin gives the alloc an eth0 whose frames never cross
// a device of the plugin's netns with their health-check marks, so nothing
// could tell a health check from a request. A task that asks to scale to
// zero there is still started, joined to eth0 by the same TC redirects; it
// stays awake and says so in a task event, and health checks are answered
// by the running VM (ipvlan l2 would be the same; this kernel has no ipvlan
// to test it with). An ipvlan in l3 mode does no ARP, so a VM could not
// reach its gateway through it: that start is refused, naming why. Either
// way the netns is left as CNI made it.
#include <doctest/doctest.h>

#include <thread>

#include "agent/agent.h"
#include "agent/link_query.h"
#include "agent/netns.h"
#include "tests/agent/agent_test_support.h"
#include "tests/agent/integration_env.h"
#include "tests/cni/cni_plugin_runner.h"
#include "tests/cni/nomad_bridge.h"
#include "tests/cni/stand_in_host.h"
#include "tests/err_text.h"

namespace s2z::cni_test {
namespace {

using namespace std::chrono_literals;
using agent::testing::httpGet;

constexpr int kPort = 8080;  // the test guest serves 8080
constexpr auto kIdleTimeout = 2s;

std::unique_ptr<agent::Agent> makeTestAgent(const agent::testing::IntegrationEnv& env) {
  auto made = agent::makeAgent(cniAgentConfig(env));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  // Scale to zero works on this host: the task below stays awake because of
  // its network alone.
  REQUIRE_MESSAGE((*made)->status().scaleToZeroReady, (*made)->status().problem);
  return std::move(*made);
}

int counterAt(const std::string& address) {
  auto r = httpGet(address, kPort, "/counter", 2s);
  return guestCounter(r.status, r.body);
}

// A VM task that asks to scale to zero, in an alloc whose eth0 is a macvlan:
// it runs, serves, says it stays awake, and never sleeps.
TEST_CASE("group network: on a macvlan CNI network (no host veth) a task runs awake and says why") {
  if (!agent::testing::guestAvailable()) {
    FAIL("test guest missing in " << agent::testing::guestDir() << " (run scripts/build-guest.sh)");
  }
  agent::testing::IntegrationEnv env("grpmac");
  REQUIRE(addMacvlanParent({}).ok());
  const std::string tag = std::to_string(::getpid());
  auto a = CniAlloc::addWith(macvlanConflist(env.stateDir().string() + "/cni"), "macvlan-" + tag,
                             "s2zt-macvlan-" + tag, {});
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  const std::string cniState = netnsState(**a);
  auto ns = agent::NetnsHandle::open((*a)->netnsPath());
  REQUIRE(ns.ok());
  auto eth0 = ns->run([] { return agent::queryLink("eth0"); });
  REQUIRE(eth0.ok());
  REQUIRE(eth0->kind == "macvlan");

  auto agentPtr = makeTestAgent(env);
  auto spec = agent::testing::testGuestSpec(env.stateDir(), "macvlan-web-" + tag);
  spec.scaleToZero = true;
  spec.idleTimeout = kIdleTimeout;
  spec.group.netnsPath = (*a)->netnsPath();
  agent::testing::EventLog events;
  auto started = agentPtr->start(spec, events.sink());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  auto inst = std::move(*started);  // the only reference: a plugin restart below drops it

  // The task event says it stays awake, and why.
  auto off = events.find("Scale to zero off");
  REQUIRE(off.size() == 1);
  MESSAGE(off.front().message);
  CHECK(off.front().message.find("is a macvlan") != std::string::npos);
  CHECK(off.front().message.find("stays awake") != std::string::npos);
  CHECK(off.front().annotations.at("scale_to_zero") == "off");
  auto rec = inst->record();
  CHECK_FALSE(rec.spec.scaleToZero);
  CHECK(rec.network.ifindex == 0);  // no BPF registration
  CHECK(rec.network.address == (*a)->address());
  CHECK(rec.network.mac == eth0->mac);

  // Serving through eth0, from a host on the parent's segment.
  REQUIRE_MESSAGE(agent::testing::waitUntil(
                      [&] { return httpGet(rec.network.address, kPort, "/", 1s).status == 200; }, 60s),
                  "guest never answered HTTP through the macvlan");
  const int counter = counterAt(rec.network.address);
  REQUIRE(counter >= 1);

  // Idle for twice its timeout, health checks from the health cgroup
  // answered by the running VM: it never sleeps, before a plugin restart
  // (a new agent recovers the task from its record and joins the netns
  // again) and after it.
  auto idleWithHealthChecks = [&] {
    const auto until = std::chrono::steady_clock::now() + 2 * kIdleTimeout;
    while (std::chrono::steady_clock::now() < until) {
      auto checks = env.healthChecks(rec.network.address, kPort, 1);
      REQUIRE(checks.size() == 1);
      CHECK(checks.front().status == 200);
      std::this_thread::sleep_for(500ms);
    }
    CHECK(inst->state() == agent::InstanceState::kRunning);
    CHECK(events.find("Sleeping").empty());
  };
  idleWithHealthChecks();
  CHECK(counterAt(rec.network.address) == counter + 1);

  inst.reset();
  agentPtr = makeTestAgent(env);  // the plugin restarted
  auto recovered = agentPtr->recover(rec, events.sink());
  REQUIRE_MESSAGE(recovered.ok(), s2z::tests::errText(recovered));
  inst = std::move(*recovered);
  CHECK(inst->state() == agent::InstanceState::kRunning);
  idleWithHealthChecks();
  CHECK(counterAt(rec.network.address) == counter + 2);  // the same VM
  CHECK(events.find("Scale to zero off").size() == 1);   // said once, at start

  // Teardown: the netns as CNI made it.
  REQUIRE(inst->stop(2s, 0).ok());
  auto destroyed = inst->destroy();
  CHECK_MESSAGE(destroyed.ok(), s2z::tests::errText(destroyed));
  agentPtr->forget(spec.taskId);
  CHECK(netnsState(**a) == cniState);
}

// ipvlan in l3 or l3s mode makes such an eth0 (IFF_NOARP). This kernel has
// no ipvlan (CONFIG_IPVLAN is off), so the test turns ARP off on a macvlan.
TEST_CASE("group network: an eth0 that does no ARP (as ipvlan l3 makes) is refused at start, naming why") {
  agent::testing::IntegrationEnv env("grpnoarp");
  REQUIRE(addMacvlanParent({}).ok());
  const std::string tag = std::to_string(::getpid());
  auto a = CniAlloc::addWith(macvlanConflist(env.stateDir().string() + "/cni"), "noarp-" + tag,
                             "s2zt-noarp-" + tag, {});
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  REQUIRE(inNetns((*a)->netnsName(), {"ip", "link", "set", "eth0", "arp", "off"}).ok());
  const std::string cniState = netnsState(**a);

  auto agentPtr = makeTestAgent(env);
  auto spec = agent::testing::testGuestSpec(env.stateDir(), "noarp-web-" + tag);
  spec.scaleToZero = true;
  spec.group.netnsPath = (*a)->netnsPath();
  agent::testing::EventLog events;
  auto started = agentPtr->start(spec, events.sink());
  REQUIRE_FALSE(started.ok());
  MESSAGE(started.error().describe());
  CHECK(started.error().code == ErrorCode::kFailedPrecondition);
  CHECK(started.error().message.find("does no ARP") != std::string::npos);
  CHECK(netnsState(**a) == cniState);  // no tap, nothing else
}

}  // namespace
}  // namespace s2z::cni_test
