// The BasePlugin gRPC service: identity (PluginInfo), the plugin config
// schema, and SetConfig. SetConfig only decodes, validates and stores: the
// probe and validation launches of the plugin call it, so it must not touch
// the host (the agent is created later, on first use).
#pragma once

#include "driver/plugin.h"
#include "driver/proto_types.h"

namespace s2z::driver {

class BaseService final : public basepb::BasePlugin::Service {
 public:
  explicit BaseService(Plugin& plugin) : plugin_(plugin) {}

  // type DRIVER, api versions ["v0.1.0"], version "0.1.0", name "s2z-kata".
  grpc::Status PluginInfo(grpc::ServerContext*, const basepb::PluginInfoRequest*,
                          basepb::PluginInfoResponse*) override;
  grpc::Status ConfigSchema(grpc::ServerContext*, const basepb::ConfigSchemaRequest*,
                            basepb::ConfigSchemaResponse*) override;
  // INVALID_ARGUMENT naming the key for a bad config (including a kata_config
  // file that exists but cannot be used); the previous config stays in force
  // then. Only reads files.
  grpc::Status SetConfig(grpc::ServerContext*, const basepb::SetConfigRequest*,
                         basepb::SetConfigResponse*) override;

 private:
  Plugin& plugin_;
};

}  // namespace s2z::driver
