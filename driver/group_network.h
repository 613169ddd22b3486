// TaskConfig.network_isolation_spec -> the agent's GroupNetworkSpec.
// The driver declares HOST and GROUP (driver_service.cpp): with GROUP,
// Nomad (its default network manager, must_create_network = false) made
// the alloc's netns, ran CNI in it and passes its path; the VM joins it
// (agent/group_network_backend.h).
#pragma once

#include "agent/group_network_spec.h"
#include "common/result.h"
#include "driver/proto_types.h"

namespace s2z::driver {

// No spec or mode HOST: host networking (an empty GroupNetworkSpec).
// GROUP: the netns path, and host_ip:value of every group port mapping
// (health checks with address_mode = "host" connect there).
// Fails: kInvalidArgument for GROUP without a path, or TASK/NONE (modes
// this driver does not declare, so Nomad never sends them).
Result<agent::GroupNetworkSpec> groupNetworkFor(const pb::TaskConfig& nomad);

}  // namespace s2z::driver
