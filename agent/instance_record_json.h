// InstanceRecord <-> JSON. The driver stores this JSON in Nomad's task handle
// and the agent writes it to <runDir>/instance.json on every state change, so a
// restarted plugin can find the instance again. The format is versioned
// ("version": 8); decoding is strict: a missing, unknown or mistyped field is
// an error naming it, never a silently defaulted value. Older versions are
// still read, so tasks started by an older plugin can be recovered: 1 (wave
// 1: spec.consolePath, no stderrPath, no logHolder), 3 (no workload
// readonlyRoot and stopSignal: false and 0), 4 (no sleep tiers: every sleep
// was deep and stayed so; no cgroup; no group network), 5 (no
// snapshotGeneration: the snapshot of a task asleep across the upgrade has no
// manifest and is restored unchecked, once), 6 (no lightSleepCache: every
// light sleep kept the cache), 7 (no spec.cgroupScope: the task
// lives in Nomad's cgroup v2 scope only).
#pragma once

#include <nlohmann/json.hpp>

#include "agent/instance.h"
#include "common/result.h"

namespace s2z::agent {

inline constexpr int kInstanceRecordVersion = 8;

// Encodes every field of the record (plus "version").
nlohmann::json toJson(const InstanceRecord& record);

// Decodes what toJson wrote. Fails with kInvalidArgument naming the field
// ("instance record: spec.idleTimeoutMs: missing") for a missing, unknown or
// mistyped field, an unknown enum value, or an unsupported version.
Result<InstanceRecord> instanceRecordFromJson(const nlohmann::json& json);

}  // namespace s2z::agent
