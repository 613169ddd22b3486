// The node's CPU as Nomad's drivers count it, for a task's CPU limits
// (driver/task_limits.h).
#pragma once

#include <cstdint>

#include "driver/proto_types.h"

namespace s2z::driver {

// The node's total compute in MHz from the Topology SetConfig brings
// (Nomad >= 1.7): the client's cpu_total_compute override when set, else
// each core's base speed, else its max speed, else its guessed speed,
// summed over all cores (Nomad's numalib Topology.TotalCompute).
uint64_t nodeTotalComputeMhz(const basepb::ClientTopology& topology);

// How many CPUs this process may run on (its affinity mask), the count
// docker's driver multiplies a CFS quota by (Go's runtime.NumCPU()).
unsigned cpusThisProcessMayUse();

}  // namespace s2z::driver
