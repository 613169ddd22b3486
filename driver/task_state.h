// The small versioned struct persisted in Nomad's TaskHandle.driver_state:
// everything a new plugin process needs to find the task's VM again (the
// agent's InstanceRecord). JSON: {"version": 1, "instance": {...}}.
// Bump kTaskStateVersion on any incompatible change and keep reading the
// old versions: Nomad hands back handles written by older plugin builds.
#pragma once

#include <string>
#include <string_view>

#include "agent/instance.h"
#include "common/result.h"

namespace s2z::driver {

inline constexpr int kTaskStateVersion = 1;

// Serializes the record into driver_state bytes.
std::string encodeTaskState(const agent::InstanceRecord& record);

// Parses driver_state bytes. kInvalidArgument for empty or malformed bytes,
// an unknown "version" (the message names it and the supported one) or a
// record the agent cannot decode.
Result<agent::InstanceRecord> decodeTaskState(std::string_view bytes);

}  // namespace s2z::driver
