// CNI networks without a host veth: a cni/<name> network made by Debian's
// macvlan plugin gives the alloc an eth0 whose traffic never crosses a
// device of the plugin's netns, so there is no point where health-check
// marks are visible before the netns. The start is refused with a message
// saying so (rather than a VM whose health checks would wake it), and
// nothing is left in the netns.
#include <doctest/doctest.h>

#include "agent/agent.h"
#include "tests/agent/agent_test_support.h"
#include "tests/agent/integration_env.h"
#include "tests/cni/cni_plugin_runner.h"
#include "tests/cni/nomad_bridge.h"

namespace s2z::cni_test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("group network: a macvlan CNI network (no host veth) is refused at start, naming why") {
  agent::testing::IntegrationEnv env("grpmac");
  // The macvlan's parent: one end of a veth pair in the stand-in host netns.
  REQUIRE(runTool({"ip", "link", "add", "s2zmparent", "type", "veth", "peer", "name", "s2zmpeer"}).ok());
  REQUIRE(runTool({"ip", "link", "set", "s2zmparent", "up"}).ok());
  const std::string tag = std::to_string(::getpid());
  json conflist = {
      {"cniVersion", "0.4.0"},
      {"name", "macnet"},
      {"plugins", json::array({json{{"type", "macvlan"},
                                    {"master", "s2zmparent"},
                                    {"mode", "bridge"},
                                    {"ipam",
                                     {{"type", "host-local"},
                                      {"ranges", json::array({json::array({json{{"subnet", "192.168.77.0/24"}}})})},
                                      {"dataDir", env.stateDir().string() + "/cni"}}}}})},
  };
  auto a = CniAlloc::addWith(conflist, "mac-" + tag, "s2zt-mac-" + tag, {});
  REQUIRE_MESSAGE(a.ok(), a.error().describe());
  auto before = inNetns((*a)->netnsName(), {"ip", "-o", "link", "show"});
  REQUIRE(before.ok());
  CHECK(before->find("macvlan") == std::string::npos);  // -o link shows no kind; eth0 is there
  CHECK(before->find("eth0") != std::string::npos);

  agent::AgentConfig config;
  config.stateDir = env.stateDir();
  config.bpfPinRoot = env.pinRoot();
  auto made = agent::makeAgent(config);
  REQUIRE_MESSAGE(made.ok(), made.error().describe());

  auto spec = agent::testing::testGuestSpec(env.stateDir(), "mac-web-" + tag);
  spec.scaleToZero = true;
  spec.group.netnsPath = (*a)->netnsPath();
  agent::testing::EventLog events;
  auto started = (*made)->start(spec, events.sink());
  REQUIRE_FALSE(started.ok());
  MESSAGE(started.error().describe());
  CHECK(started.error().code == ErrorCode::kFailedPrecondition);
  CHECK(started.error().message.find("macvlan or ipvlan") != std::string::npos);
  auto after = inNetns((*a)->netnsName(), {"ip", "-o", "link", "show"});
  REQUIRE(after.ok());
  CHECK(*after == *before);  // no tap, nothing else
}

}  // namespace
}  // namespace s2z::cni_test
