// The workload cgroup's memory limit: what it leaves to the kernel and the
// agent, and the /proc/meminfo field it starts from.
#include <doctest/doctest.h>

#include "guest/agent/workload_cgroup.h"

namespace s2z::guest {
namespace {

// A guest of 256 MiB as the driver boots it (values seen in its /proc/meminfo).
constexpr char kMeminfo[] =
    "MemTotal:         223768 kB\n"
    "MemFree:          173728 kB\n"
    "MemAvailable:     178532 kB\n"
    "Buffers:             508 kB\n";

TEST_CASE("meminfoKib: the named field, not one it prefixes; 0 when absent") {
  CHECK(meminfoKib(kMeminfo, "MemTotal") == 223768);
  CHECK(meminfoKib(kMeminfo, "MemAvailable") == 178532);
  CHECK(meminfoKib(kMeminfo, "Buffers") == 508);
  CHECK(meminfoKib(kMeminfo, "Mem") == 0);
  CHECK(meminfoKib(kMeminfo, "Cached") == 0);
  CHECK(meminfoKib("", "MemAvailable") == 0);
}

TEST_CASE("workloadMemoryMax: what is free at boot less the reserve; no limit in a guest too small") {
  CHECK(workloadMemoryMax(178532) == std::to_string(178532ull * 1024 - kGuestMemoryReserveBytes));
  const uint64_t twiceReserveKib = 2 * kGuestMemoryReserveBytes / 1024;
  CHECK(workloadMemoryMax(twiceReserveKib) == std::to_string(kGuestMemoryReserveBytes));
  CHECK(workloadMemoryMax(twiceReserveKib - 1) == "max");
  CHECK(workloadMemoryMax(0) == "max");
}

}  // namespace
}  // namespace s2z::guest
