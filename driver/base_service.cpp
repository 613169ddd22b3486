#include "driver/base_service.h"

#include <spdlog/spdlog.h>

#include "driver/config_schema.h"
#include "driver/error_status.h"
#include "driver/go_duration.h"
#include "driver/node_compute.h"

namespace s2z::driver {

grpc::Status BaseService::PluginInfo(grpc::ServerContext*, const basepb::PluginInfoRequest*,
                                     basepb::PluginInfoResponse* response) {
  response->set_type(basepb::DRIVER);
  response->add_plugin_api_versions(kPluginApiVersion);
  response->set_plugin_version(kPluginVersion);
  response->set_name(kPluginName);
  return grpc::Status::OK;
}

grpc::Status BaseService::ConfigSchema(grpc::ServerContext*, const basepb::ConfigSchemaRequest*,
                                       basepb::ConfigSchemaResponse* response) {
  *response->mutable_spec() = pluginConfigSpec();
  return grpc::Status::OK;
}

grpc::Status BaseService::SetConfig(grpc::ServerContext*, const basepb::SetConfigRequest* request,
                                    basepb::SetConfigResponse*) {
  auto config = decodePluginConfig(request->msgpack_config());
  if (!config.ok()) {
    spdlog::error("set config: {}", config.error().describe());
    return toStatus(config.error().wrap("plugin config"));
  }
  // A Kata file that exists but is unusable (e.g. shared_fs = virtio-fs) is a
  // config error the user should see at agent start; a missing one may still
  // be installed later and only makes the fingerprint unhealthy. Reading a
  // file is no side effect.
  if (!config->kataConfig.empty()) {
    auto kata = plugin_.host().loadKataConfig(config->kataConfig);
    if (!kata.ok() && kata.error().code != ErrorCode::kNotFound) {
      Error e{ErrorCode::kInvalidArgument, 0,
              "config key \"kata_config\": " + kata.error().describe()};
      spdlog::error("set config: {}", e.message);
      return toStatus(e.wrap("plugin config"));
    }
    if (!kata.ok()) spdlog::warn("set config: {}", kata.error().describe());
  }
  if (request->has_nomad_config()) {
    const auto& d = request->nomad_config().driver();
    spdlog::debug("set config: client ports {}-{}", d.clientminport(), d.clientmaxport());
    if (d.has_topology()) {
      config->nodeTotalComputeMhz = nodeTotalComputeMhz(d.topology());
      spdlog::debug("set config: node compute {} MHz over {} cores", config->nodeTotalComputeMhz,
                    d.topology().cores_size());
    }
  }
  spdlog::info("set config: hypervisor={} accelerator={} state_dir={} subnet={} idle_timeout={}",
               hypervisorConfigName(config->hypervisor),
               acceleratorChoiceName(config->accelerator), config->stateDir.string(),
               config->subnet, formatGoDuration(config->idleTimeout));
  plugin_.setConfig(std::move(config).value());
  return grpc::Status::OK;
}

}  // namespace s2z::driver
