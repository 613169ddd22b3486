// The test fixture itself, before any VM: Nomad's bridge layout built with
// Debian's CNI plugins from the client's conflist gives each alloc eth0 on
// bridge "nomad" with an address of 172.26.64.0/20, its host port reaches
// the alloc through portmap's DNAT, CNI CHECK passes, and DEL leaves the
// netns with loopback only and the bridge without the alloc's port.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>

#include "agent/link_query.h"
#include "agent/netns.h"
#include "tests/agent/integration_env.h"
#include "tests/cni/cni_plugin_runner.h"
#include "tests/cni/nomad_bridge.h"
#include "tests/cni/stand_in_host.h"
#include "tests/err_text.h"

namespace s2z::cni_test {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST_CASE("cni fixture: Nomad's bridge network from the client's conflist, two allocs") {
  agent::testing::IntegrationEnv env("cnifx");
  {
    auto node = addNodeAddress();
    REQUIRE_MESSAGE(node.ok(), s2z::tests::errText(node));
  }
  const std::string dataDir = env.stateDir().string() + "/cni";
  const std::string tag = std::to_string(::getpid());

  auto a = CniAlloc::add("alloc-a-" + tag, "s2zt-cni-a-" + tag, {{28080, 8080, kNodeAddress}}, dataDir);
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  auto b = CniAlloc::add("alloc-b-" + tag, "s2zt-cni-b-" + tag, {{28081, 8080, kNodeAddress}}, dataDir);
  REQUIRE_MESSAGE(b.ok(), s2z::tests::errText(b));
  CniAlloc& allocA = **a;
  CniAlloc& allocB = **b;

  // Addresses from the subnet, the bridge as gateway.
  CHECK(allocA.address().rfind("172.26.", 0) == 0);
  CHECK(allocB.address().rfind("172.26.", 0) == 0);
  CHECK(allocA.address() != allocB.address());
  CHECK(allocA.gateway() == "172.26.64.1");
  MESSAGE("alloc A " << allocA.address() << ", alloc B " << allocB.address());

  // eth0 is a veth whose peer is a port of "nomad" in the host netns.
  auto ns = agent::NetnsHandle::open(allocA.netnsPath());
  REQUIRE(ns.ok());
  auto eth0 = ns->run([] { return agent::queryLink("eth0"); });
  REQUIRE_MESSAGE(eth0.ok(), s2z::tests::errText(eth0));
  CHECK(eth0->kind == "veth");
  CHECK(eth0->peerInOtherNamespace);
  auto peer = agent::queryLink(eth0->peerIfindex);
  REQUIRE(peer.ok());
  CHECK(peer->hasMaster);
  CHECK(peer->peerIfindex == eth0->ifindex);
  auto ipv4 = ns->run([&] { return agent::queryIpv4(eth0->ifindex); });
  REQUIRE(ipv4.ok());
  CHECK(ipv4->address == allocA.address());
  CHECK(ipv4->prefixLength == 20);
  CHECK(ipv4->gateway == "172.26.64.1");
  CHECK(ipv4->routes.empty());  // Nomad's conflist routes 0.0.0.0/0 only

  // portmap: node address + host port reaches the alloc's `to` port.
  TinyServer server(allocA.netnsPath(), 8080, "hello from A\n");
  REQUIRE(server.listening());
  CHECK(tcpFetch(allocA.address(), 8080, 2s) == "hello from A\n");
  CHECK(tcpFetch(kNodeAddress, 28080, 2s) == "hello from A\n");
  CHECK(tcpFetch(kNodeAddress, 28081, 500ms).empty());  // B serves nothing

  // The client's restart check.
  auto checked = allocA.check();
  CHECK_MESSAGE(checked.ok(), s2z::tests::errText(checked));

  // DEL: nothing of A left in its netns, on the bridge or in iptables.
  REQUIRE(allocA.del().ok());
  auto links = inNetns(allocA.netnsName(), {"ip", "-o", "link", "show"});
  REQUIRE(links.ok());
  CHECK_FALSE(contains(*links, "eth0"));
  auto rules = runTool({"iptables-save"});
  REQUIRE(rules.ok());
  CHECK_FALSE(contains(*rules, allocA.allocId()));
  CHECK(contains(*rules, allocB.allocId()));
  auto ports = runTool({"ip", "-o", "link", "show", "master", kBridgeName});
  REQUIRE(ports.ok());
  CHECK(std::count(ports->begin(), ports->end(), '\n') == 1);  // B's port only
}

}  // namespace
}  // namespace s2z::cni_test
