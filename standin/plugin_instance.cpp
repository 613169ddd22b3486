#include "standin/plugin_instance.h"

#include <grpcpp/channel.h>
#include <spdlog/spdlog.h>

namespace s2z::standin {

Result<std::unique_ptr<PluginInstance>> PluginInstance::start(const LaunchOptions& options) {
  std::unique_ptr<PluginInstance> inst(new PluginInstance());
  auto process = PluginProcess::launch(options);
  if (!process.ok()) return process.error();
  inst->process_ = std::move(*process);
  auto conn = PluginConnection::connect(inst->process_->handshake(), std::chrono::seconds(10));
  if (!conn.ok()) return conn.error();
  inst->connection_ = std::move(*conn);
  inst->base_ = hashicorp::nomad::plugins::base::proto::BasePlugin::NewStub(inst->connection_->channel());
  inst->driver_ = hashicorp::nomad::plugins::drivers::proto::Driver::NewStub(inst->connection_->channel());
  return inst;
}

KillReport PluginInstance::kill() {
  if (killed_) return killReport_;
  background_.stop();
  killReport_ = killPlugin(*process_, connection_.get());
  killed_ = true;
  spdlog::info("standin: plugin pid {} killed: exit after {} ms{}", process_->pid(),
               killReport_.timeToExit.count(), killReport_.sigkilled ? " (SIGKILL)" : "");
  return killReport_;
}

void PluginInstance::crash() {
  process_->sigkill();
  (void)process_->waitExit(std::chrono::seconds(10));
  background_.stop();
  connection_->close();
  killed_ = true;
}

PluginInstance::~PluginInstance() {
  if (process_ && !killed_) kill();
}

}  // namespace s2z::standin
