// GROUP network isolation at the driver's edge: the capability Nomad checks
// before placing a bridge/CNI group, and TaskConfig.network_isolation_spec
// turned into the agent's GroupNetworkSpec (netns path, host ports for the
// health hooks). The agent side is tests/cni/group_network_test.cpp.
#include <doctest/doctest.h>

#include <algorithm>

#include "driver/error_status.h"
#include "tests/driver/driver_fixture.h"

namespace s2z::driver::test {
namespace {

pb::TaskConfig groupTask(DriverFixture& f, pb::NetworkIsolationSpec::NetworkIsolationMode mode,
                         const std::string& path) {
  auto task = f.taskConfig("web", webTaskConfig());
  auto* iso = task.mutable_network_isolation_spec();
  iso->set_mode(mode);
  iso->set_path(path);
  for (auto& port : *task.mutable_resources()->mutable_ports()) port.set_host_ip("10.0.0.5");
  return task;
}

TEST_CASE("Capabilities: HOST and GROUP, Nomad creates the network") {
  DriverFixture f;
  pb::CapabilitiesResponse caps;
  REQUIRE(f.driver->Capabilities(f.ctx().get(), {}, &caps).ok());
  const auto& modes = caps.capabilities().network_isolation_modes();
  CHECK(std::find(modes.begin(), modes.end(), pb::NetworkIsolationSpec::HOST) != modes.end());
  CHECK(std::find(modes.begin(), modes.end(), pb::NetworkIsolationSpec::GROUP) != modes.end());
  CHECK_FALSE(caps.capabilities().must_create_network());
}

TEST_CASE("StartTask in GROUP mode: the agent gets the netns path and the host ports") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  pb::StartTaskResponse resp;
  auto status = f.start(groupTask(f, pb::NetworkIsolationSpec::GROUP, "/var/run/netns/5f1c2d3e"), &resp);
  INFO(status.error_message());
  REQUIRE(status.ok());
  REQUIRE(f.agentState->started.size() == 1);
  const auto& group = f.agentState->started[0].group;
  CHECK(group.enabled());
  CHECK(group.netnsPath == "/var/run/netns/5f1c2d3e");
  REQUIRE(group.hostPorts.size() == 2);
  CHECK(group.hostPorts[0].hostIp == "10.0.0.5");
  CHECK(group.hostPorts[0].port == 23456);  // value: what portmap DNATs
  CHECK(group.hostPorts[1].port == 24000);
}

TEST_CASE("StartTask without a spec or in HOST mode: host networking") {
  for (bool withSpec : {false, true}) {
    DriverFixture f;
    REQUIRE(f.setConfig().ok());
    pb::StartTaskResponse resp;
    auto task = withSpec ? groupTask(f, pb::NetworkIsolationSpec::HOST, "")
                         : f.taskConfig("web", webTaskConfig());
    REQUIRE(f.start(task, &resp).ok());
    REQUIRE(f.agentState->started.size() == 1);
    CHECK_FALSE(f.agentState->started[0].group.enabled());
  }
}

TEST_CASE("StartTask in GROUP mode without a path, or in TASK mode, is INVALID_ARGUMENT") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  pb::StartTaskResponse resp;
  auto status = f.start(groupTask(f, pb::NetworkIsolationSpec::GROUP, ""), &resp);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status.error_message().find("network_isolation_spec") != std::string::npos);
  status = f.start(groupTask(f, pb::NetworkIsolationSpec::TASK, "/x"), &resp);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(f.agentState->started.empty());
}

}  // namespace
}  // namespace s2z::driver::test
