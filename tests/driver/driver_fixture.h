// An in-process plugin for driver tests: the real services and PluginServer
// on a unix socket in a temp dir, backed by FakeHost, with client stubs.
#pragma once

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "driver/base_service.h"
#include "driver/driver_service.h"
#include "driver/go_plugin_services.h"
#include "driver/plugin.h"
#include "driver/plugin_server.h"
#include "tests/driver/fake_host.h"

namespace s2z::driver::test {

// A private temp directory removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  // Writes a file (mode 0644, or 0755 when executable).
  std::filesystem::path write(const std::string& rel, const std::string& content,
                              bool executable = false) const;

 private:
  std::filesystem::path path_;
};

class DriverFixture {
 public:
  // shared lets two fixtures (two plugin processes) see the same fake VMs.
  explicit DriverFixture(std::shared_ptr<FakeAgentState> shared = nullptr);
  ~DriverFixture();

  // SetConfig with the fixture's kernel/initrd plus extra keys.
  grpc::Status setConfig(const nlohmann::json& extra = nlohmann::json::object());
  // As a Nomad >= 1.7 client sends it: nomad_config.driver.Topology too.
  grpc::Status setConfig(const nlohmann::json& extra, const basepb::ClientTopology& topology);
  // A TaskConfig like Nomad's: ports http (to 8080) and admin (to 0, value 24000).
  pb::TaskConfig taskConfig(const std::string& name, const nlohmann::json& config) const;
  grpc::Status start(const pb::TaskConfig& task, pb::StartTaskResponse* out);
  std::unique_ptr<grpc::ClientContext> ctx(std::chrono::milliseconds deadline = std::chrono::milliseconds(5000)) const;

  TempDir dir;
  std::shared_ptr<FakeAgentState> agentState;
  FakeHost* host = nullptr;  // owned by plugin
  std::unique_ptr<Plugin> plugin;
  std::filesystem::path kernel, initrd;

  std::unique_ptr<pb::Driver::Stub> driver;
  std::unique_ptr<basepb::BasePlugin::Stub> base;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
  std::unique_ptr<::plugin::GRPCController::Stub> controller;
  int shutdownRequests = 0;
  std::unique_ptr<PluginServer> server;

 private:
  std::unique_ptr<BaseService> baseService_;
  std::unique_ptr<DriverService> driverService_;
  std::unique_ptr<HealthService> healthService_;
  std::unique_ptr<ControllerService> controllerService_;
  std::unique_ptr<StdioService> stdioService_;
  std::unique_ptr<BrokerService> brokerService_;
};

// The usual test task config: ports http+admin, 2 vcpus, scale_to_zero 45s.
nlohmann::json webTaskConfig();
// SetConfig, then StartTask "web"; fails the test case unless both succeed.
pb::StartTaskResponse startWeb(DriverFixture& f, const nlohmann::json& config = webTaskConfig());

}  // namespace s2z::driver::test
