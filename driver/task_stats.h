// Converts the agent's resource usage of one instance into Nomad's TaskStats
// (protocol doc §3.10): percent (100 = one core), user/system mode percents,
// total_ticks as MHz consumed (percent/100 x MHz of one core), the task cpu
// cgroup's throttled_periods and throttled_time (ns), memory RSS in bytes. A sleeping VM has no process and reports zero usage: that zero is a
// real measurement, so the measured fields stay the same.
#pragma once

#include <chrono>
#include <string>

#include "agent/instance.h"
#include "driver/proto_types.h"

namespace s2z::driver {

// Fills every field Nomad requires (id, timestamp, agg_resource_usage).
// mhzPerCore 0 means unknown: total_ticks is then left out of measured_fields.
pb::TaskStats toTaskStats(const std::string& taskId, const agent::ResourceUsage& usage,
                          std::chrono::system_clock::time_point now, double mhzPerCore);

}  // namespace s2z::driver
