// A VM task in Nomad's group network (network { mode = "bridge" }), through
// the real agent: the alloc's netns made by the CNI plugins from the
// client's conflist, the VM joined to eth0 by TC redirects, serving on
// host_ip:host_port (portmap) and alloc_ip:to. Idle, it sleeps; health
// checks from the health cgroup to both addresses are answered and never
// wake it; the other alloc's broadcasts never wake it; a request to
// host_ip:host_port wakes it with no SYN retransmit; teardown leaves the
// netns as CNI made it (CNI CHECK still passes).
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
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
using agent::testing::EventLog;
using agent::testing::httpGet;
using agent::testing::IntegrationEnv;
using agent::testing::waitUntil;

constexpr int kTo = 8080;          // the task's `to` port (the test guest serves 8080)
constexpr int kHostPort = 28080;   // the allocated host port
constexpr auto kIdle = 3s;

uint64_t attr(const std::shared_ptr<agent::Instance>& i, const std::string& key) {
  auto a = i->attributes();
  return a.count(key) ? std::stoull(a.at(key)) : ~0ULL;
}

size_t count(const EventLog& log, const std::string& prefix) { return log.find(prefix).size(); }

int counterOf(const agent::testing::HttpResult& r) { return guestCounter(r.status, r.body); }

// The whole scenario for one sleep tier: light (the paused VMM keeps its tap
// queue) or deep (snapshot, the VMM exits, frames wait in the queue the tap
// was diverted to, inside the alloc's netns).
void groupTaskScenario(agent::SleepTier tier) {
  if (!agent::testing::guestAvailable()) {
    FAIL("test guest missing in " << agent::testing::guestDir() << " (run scripts/build-guest.sh)");
  }
  IntegrationEnv env("grp");
  {
    auto node = addNodeAddress();
    REQUIRE_MESSAGE(node.ok(), s2z::tests::errText(node));
  }
  const std::string tag = std::to_string(::getpid());
  const std::string dataDir = env.stateDir().string() + "/cni";
  auto a = CniAlloc::add("alloc-a-" + tag, "s2zt-grp-a-" + tag, {{kHostPort, kTo, kNodeAddress}}, dataDir);
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  auto b = CniAlloc::add("alloc-b-" + tag, "s2zt-grp-b-" + tag, {}, dataDir);
  REQUIRE_MESSAGE(b.ok(), s2z::tests::errText(b));
  CniAlloc& allocA = **a;
  CniAlloc& allocB = **b;
  const std::string cniState = netnsState(allocA);

  auto made = agent::makeAgent(cniAgentConfig(env));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  std::unique_ptr<agent::Agent> agentPtr = std::move(*made);
  REQUIRE_MESSAGE(agentPtr->status().scaleToZeroReady, agentPtr->status().problem);

  auto spec = agent::testing::testGuestSpec(env.stateDir(), "grp-web-" + tag);
  spec.scaleToZero = true;
  spec.idleTimeout = kIdle;
  spec.sleepTier = tier;
  spec.group.netnsPath = allocA.netnsPath();
  spec.group.hostPorts = {{kNodeAddress, static_cast<uint16_t>(kHostPort)}};

  EventLog events;
  auto started = agentPtr->start(spec, events.sink());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  auto inst = *started;
  auto rec = inst->record();

  // The VM takes eth0's address, gateway and MAC; its tap is in the netns.
  CHECK(rec.network.address == allocA.address());
  CHECK(rec.network.gateway == allocA.gateway());
  auto ns = agent::NetnsHandle::open(allocA.netnsPath());
  REQUIRE(ns.ok());
  auto eth0 = ns->run([] { return agent::queryLink("eth0"); });
  REQUIRE(eth0.ok());
  CHECK(rec.network.mac == eth0->mac);
  CHECK(rec.network.ifindex == eth0->peerIfindex);  // the BPF key: the bridge port
  auto tap = ns->run([&] { return agent::queryLink(rec.network.tapName); });
  REQUIRE_MESSAGE(tap.ok(), "tap not in the alloc's netns");
  CHECK(tap->mtu == eth0->mtu);
  auto qdiscs = inNetns(allocA.netnsName(), {"tc", "filter", "show", "dev", "eth0", "ingress"});
  REQUIRE(qdiscs.ok());
  CHECK(qdiscs->find("mirred") != std::string::npos);
  MESSAGE("VM " << rec.network.address << " mac " << rec.network.mac << " tap " << rec.network.tapName);

  // Serving on alloc_ip:to and host_ip:host_port (portmap DNAT).
  REQUIRE_MESSAGE(waitUntil([&] { return httpGet(allocA.address(), kTo, "/", 1s).status == 200; }, 60s),
                  "guest never answered HTTP on its alloc address");
  int counter = counterOf(httpGet(kNodeAddress, kHostPort, "/counter", 2s));
  REQUIRE(counter >= 1);
  // eth0 kept its address: the client's CNI CHECK after a restart passes.
  auto checked = allocA.check();
  CHECK_MESSAGE(checked.ok(), s2z::tests::errText(checked));

  // Health checks while running reach the guest by both paths, and never count.
  uint64_t packets = attr(inst, "packets");
  for (const auto& [address, port] : std::vector<std::pair<std::string, int>>{
           {allocA.address(), kTo}, {kNodeAddress, kHostPort}}) {
    auto checks = env.healthChecks(address, port, 10);
    REQUIRE(checks.size() == 10);
    CHECK(std::all_of(checks.begin(), checks.end(), [](auto& c) { return c.status == 200; }));
  }
  CHECK(attr(inst, "packets") == packets);
  CHECK(attr(inst, "health_packets") > 0);

  // Idle: it sleeps.
  REQUIRE(waitUntil([&] { return count(events, "Sleeping") >= 1; }, kIdle + 20s));
  CHECK(inst->state() == agent::InstanceState::kSleeping);
  CHECK(events.find("Sleeping").back().annotations.at("tier") == agent::sleepTierName(tier));
  const uint64_t packetsAsleep = attr(inst, "packets");

  // Health checks while asleep, host and alloc address modes: answered, no wake.
  for (const auto& [address, port] : std::vector<std::pair<std::string, int>>{
           {allocA.address(), kTo}, {kNodeAddress, kHostPort}}) {
    auto checks = env.healthChecks(address, port, 5);
    REQUIRE(checks.size() == 5);
    double worst = 0;
    for (const auto& c : checks) {
      CHECK(c.status == 200);
      worst = std::max(worst, c.ms);
    }
    MESSAGE("health checks asleep to " << address << ":" << port << ": worst " << worst << " ms");
  }
  // The other alloc's broadcasts flood A's bridge port: not A's traffic.
  REQUIRE(sendBroadcastNoise(allocB.netnsPath(), 5).ok());
  std::this_thread::sleep_for(300ms);
  CHECK(inst->state() == agent::InstanceState::kSleeping);
  CHECK(count(events, "Woken") == 0);
  CHECK(attr(inst, "packets") == packetsAsleep);

  // A request to host_ip:host_port wakes it: answered, memory kept, no retransmit.
  auto before = agent::testing::tcpRetransCounters();
  auto woke = httpGet(kNodeAddress, kHostPort, "/counter", 10s);
  auto after = agent::testing::tcpRetransCounters();
  REQUIRE_MESSAGE(woke.status == 200, woke.error);
  CHECK(counterOf(woke) == counter + 1);
  CHECK(woke.retransmits == 0);
  CHECK(after.synRetrans == before.synRetrans);
  REQUIRE(waitUntil([&] { return count(events, "Woken") == 1; }, 5s));
  std::string wakeMs = events.find("Woken").back().annotations.count("wake_ms")
                           ? events.find("Woken").back().annotations.at("wake_ms")
                           : "?";
  MESSAGE("group wake (" << std::string(agent::sleepTierName(tier)) << "): request answered in " << woke.totalMs << " ms (connect " << woke.connectMs
                                             << " ms, retransmits " << woke.retransmits
                                             << "), agent wake_ms " << wakeMs);

  // Teardown: the netns is as CNI made it, and CHECK still passes.
  REQUIRE(inst->stop(2s, 0).ok());
  auto destroyed = inst->destroy();
  CHECK_MESSAGE(destroyed.ok(), s2z::tests::errText(destroyed));
  agentPtr->forget(spec.taskId);
  CHECK(netnsState(allocA) == cniState);
  checked = allocA.check();
  CHECK_MESSAGE(checked.ok(), s2z::tests::errText(checked));
}

TEST_CASE("group network, light sleep: a VM task on Nomad's bridge sleeps, health checks never wake it, a request does") {
  groupTaskScenario(agent::SleepTier::kLight);
}

TEST_CASE("group network, deep sleep: the same with a snapshot, frames waiting in the tap inside the netns") {
  groupTaskScenario(agent::SleepTier::kDeep);
}

// The bridge plugin's "mtu": eth0, the bridge and the veths at 1400. A
// guest without the agent cannot be told on its command line (ip= has no
// field); the NIC tells it (virtio-net's MTU feature).
TEST_CASE("group network: an agent-less guest on a bridge network with MTU 1400 starts its eth0 at 1400") {
  if (!agent::testing::guestAvailable()) {
    FAIL("test guest missing in " << agent::testing::guestDir() << " (run scripts/build-guest.sh)");
  }
  IntegrationEnv env("grpmtu");
  const std::string tag = std::to_string(::getpid());
  auto conflist = nomadBridgeConflist(env.stateDir().string() + "/cni");
  conflist["plugins"][1]["mtu"] = 1400;
  auto a = CniAlloc::addWith(conflist, "mtu-" + tag, "s2zt-mtu-" + tag, {});
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  auto eth0 = inNetns((*a)->netnsName(), {"cat", "/sys/class/net/eth0/mtu"});
  REQUIRE(eth0.ok());
  REQUIRE(*eth0 == "1400\n");

  auto made = agent::makeAgent(cniAgentConfig(env));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  auto spec = agent::testing::testGuestSpec(env.stateDir(), "mtu-web-" + tag);
  spec.group.netnsPath = (*a)->netnsPath();
  EventLog events;
  auto started = (*made)->start(spec, events.sink());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  auto inst = std::move(*started);

  // The test guest's console line names its address and its eth0's MTU.
  const std::string ready = "s2z-guest: ready " + (*a)->address() + ":8080 mtu ";
  std::string console;
  REQUIRE_MESSAGE(waitUntil(
                      [&] {
                        std::ifstream in(spec.stdoutPath);
                        console.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
                        return console.find(ready) != std::string::npos;
                      },
                      60s),
                  console);
  CHECK_MESSAGE(std::stoi(console.substr(console.find(ready) + ready.size())) == 1400, console);
  REQUIRE_MESSAGE(waitUntil([&] { return httpGet((*a)->address(), kTo, "/", 1s).status == 200; }, 30s),
                  "guest never answered HTTP on its alloc address");

  REQUIRE(inst->stop(2s, 0).ok());
  CHECK(inst->destroy().ok());
  (*made)->forget(spec.taskId);
}

}  // namespace
}  // namespace s2z::cni_test
