// StartTask and RecoverTask as named stages. Each returns the gRPC status
// Nomad should see; on failure every completed stage is undone (a started VM
// is destroyed and forgotten), so a failed StartTask leaves nothing behind.
#pragma once

#include <grpcpp/support/status.h>

#include "driver/plugin.h"
#include "driver/proto_types.h"

namespace s2z::driver {

// Stages: decode config -> resolve defaults (plugin, Kata) -> check files ->
// agent.start -> persist handle. On success fills response: handle (version
// 1, config = the received TaskConfig, RUNNING, driver_state) and
// network_override (VM address, port map, auto_advertise).
// Errors: INVALID_ARGUMENT for bad task config or missing files (naming the
// key); FAILED_PRECONDITION with RecoverableError{true} for transient agent
// failures (kUnavailable/kTimeout); ALREADY_EXISTS for a tracked id; the
// mapped code of the agent's error otherwise.
grpc::Status startTask(Plugin& plugin, const pb::TaskConfig& task, pb::StartTaskResponse* response);

// Re-adopts the task described by handle (keyed on handle.config.id).
// Idempotent: OK if already tracked. INVALID_ARGUMENT for a handle without
// id or with undecodable driver_state; NOT_FOUND when the VM is gone.
grpc::Status recoverTask(Plugin& plugin, const pb::TaskHandle& handle);

// The NetworkOverride for a tracked task.
pb::NetworkOverride toNetworkOverride(const TaskNetwork& network);

}  // namespace s2z::driver
