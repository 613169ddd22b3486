// One launched and connected plugin process with its gRPC stubs and the
// background calls bound to it. The loader creates three of these (probe,
// validation, long-lived); a plugin restart creates another long-lived one.
#pragma once

#include <chrono>
#include <memory>

#include "common/result.h"
#include "hashicorp/nomad/plugins/base/proto/base.grpc.pb.h"
#include "hashicorp/nomad/plugins/drivers/proto/driver.grpc.pb.h"
#include "standin/background_calls.h"
#include "standin/plugin_connection.h"
#include "standin/plugin_process.h"

namespace s2z::standin {

class PluginInstance {
 public:
  // Kills the plugin the go-plugin way if it still runs (Shutdown, 2 s, SIGKILL).
  ~PluginInstance();

  // Launch + handshake + connect (+ stdio/broker streams). Fails like
  // PluginProcess::launch or PluginConnection::connect.
  static Result<std::unique_ptr<PluginInstance>> start(const LaunchOptions& options);

  PluginProcess& process() { return *process_; }
  PluginConnection& connection() { return *connection_; }
  hashicorp::nomad::plugins::base::proto::BasePlugin::Stub& base() { return *base_; }
  hashicorp::nomad::plugins::drivers::proto::Driver::Stub& driver() { return *driver_; }
  BackgroundCalls& background() { return background_; }

  // Stops the background calls, then go-plugin's kill. Idempotent: a second
  // call returns the first report.
  KillReport kill();
  // SIGKILL without a Shutdown call (a crash); background calls then fail.
  void crash();

 private:
  PluginInstance() = default;

  std::unique_ptr<PluginProcess> process_;
  std::unique_ptr<PluginConnection> connection_;
  std::unique_ptr<hashicorp::nomad::plugins::base::proto::BasePlugin::Stub> base_;
  std::unique_ptr<hashicorp::nomad::plugins::drivers::proto::Driver::Stub> driver_;
  BackgroundCalls background_;
  bool killed_ = false;
  KillReport killReport_;
};

}  // namespace s2z::standin
