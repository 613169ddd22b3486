#include "driver/group_network.h"

#include <fmt/format.h>

namespace s2z::driver {

Result<agent::GroupNetworkSpec> groupNetworkFor(const pb::TaskConfig& nomad) {
  agent::GroupNetworkSpec group;
  if (!nomad.has_network_isolation_spec()) return group;
  const auto& iso = nomad.network_isolation_spec();
  switch (iso.mode()) {
    case pb::NetworkIsolationSpec::HOST:
      return group;
    case pb::NetworkIsolationSpec::GROUP:
      break;
    default:
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("network_isolation_spec: mode {} is not supported (HOST and GROUP are)",
                                   pb::NetworkIsolationSpec::NetworkIsolationMode_Name(iso.mode())));
  }
  if (iso.path().empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "network_isolation_spec: mode GROUP without a network namespace path");
  }
  group.netnsPath = iso.path();
  for (const auto& mapping : nomad.resources().ports()) {
    if (mapping.host_ip().empty() || mapping.value() <= 0 || mapping.value() > 65535) continue;
    group.hostPorts.push_back({mapping.host_ip(), static_cast<uint16_t>(mapping.value())});
  }
  return group;
}

}  // namespace s2z::driver
