#include "driver/node_compute.h"

#include <sched.h>

namespace s2z::driver {

uint64_t nodeTotalComputeMhz(const basepb::ClientTopology& topology) {
  if (topology.override_total_compute() > 0) return topology.override_total_compute();
  uint64_t total = 0;
  for (const auto& core : topology.cores()) {
    total += core.base_speed() > 0  ? core.base_speed()
             : core.max_speed() > 0 ? core.max_speed()
                                    : core.guess_speed();
  }
  return total;
}

unsigned cpusThisProcessMayUse() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  const int count = CPU_COUNT(&set);
  return count > 0 ? static_cast<unsigned>(count) : 1;
}

}  // namespace s2z::driver
