// Nomad's resources of a task as the limits of its cgroups: the memory
// rules of Nomad's executor (memoryLimits) with the VMM's overhead added,
// its CPU shares clamped (and scaled on huge nodes) as Nomad's drivers do,
// and docker's hard CPU limit.
#include <doctest/doctest.h>

#include "driver/task_limits.h"

namespace s2z::driver {
namespace {

constexpr uint64_t kMiB = 1 << 20;

pb::Resources resources(int64_t memoryMb, int64_t memoryMaxMb, int64_t cpuShares, const std::string& cores = "") {
  pb::Resources r;
  r.mutable_allocated_resources()->mutable_memory()->set_memory_mb(memoryMb);
  r.mutable_allocated_resources()->mutable_memory()->set_memory_max_mb(memoryMaxMb);
  r.mutable_linux_resources()->set_cpu_shares(cpuShares);
  r.mutable_linux_resources()->set_cpuset_cpus(cores);
  return r;
}

agent::TaskLimits limitsFor(const pb::Resources& r, uint64_t guestMib, uint64_t overheadMib,
                            uint64_t nodeTotalComputeMhz = 0) {
  auto limits = taskLimitsFor(r, LimitInputs{guestMib, overheadMib, nodeTotalComputeMhz});
  REQUIRE(limits.ok());
  return *limits;
}

Result<agent::TaskLimits> hardLimitFor(int64_t cpuMhz, double percentTicks, unsigned hostCpus,
                                       uint64_t periodMicros = 100000) {
  auto r = resources(256, 0, cpuMhz);
  r.mutable_linux_resources()->set_percentticks(percentTicks);
  return taskLimitsFor(r, LimitInputs{256, 128, 0, hostCpus, true, periodMicros});
}

TEST_CASE("task limits: memory is a hard limit of the guest's RAM plus the VMM's overhead") {
  auto limits = limitsFor(resources(256, 0, 500), 256, 128);
  CHECK(limits.memoryMaxBytes == 384 * kMiB);
  CHECK(limits.memoryLowBytes == 0);
  CHECK(limits.cpuShares == 500);
  CHECK(limits.cpusetCpus.empty());

  SUBCASE("no overhead: the guest's RAM alone") {
    CHECK(limitsFor(resources(256, 0, 500), 256, 0).memoryMaxBytes == 256 * kMiB);
  }
  SUBCASE("the guest's RAM from a default (no memory_mb sent)") {
    CHECK(limitsFor(resources(0, 0, 500), 2048, 128).memoryMaxBytes == (2048 + 128) * kMiB);
  }
}

TEST_CASE("task limits: memory_max (oversubscription) is the hard limit, memory the reservation") {
  auto limits = limitsFor(resources(256, 1024, 500), 256, 128);
  CHECK(limits.memoryMaxBytes == (1024 + 128) * kMiB);
  CHECK(limits.memoryLowBytes == (256 + 128) * kMiB);

  SUBCASE("memory_max = -1: no hard limit, memory reserved") {
    auto unlimited = limitsFor(resources(256, -1, 500), 256, 128);
    CHECK(unlimited.memoryMaxBytes == 0);
    CHECK(unlimited.memoryLowBytes == (256 + 128) * kMiB);
  }
  SUBCASE("memory_max not above memory: memory is the hard limit") {
    auto same = limitsFor(resources(256, 256, 500), 256, 128);
    CHECK(same.memoryMaxBytes == 384 * kMiB);
    CHECK(same.memoryLowBytes == 0);
  }
}

TEST_CASE("task limits: cpu shares clamped to the kernel's range, reserved cores passed on") {
  CHECK(limitsFor(resources(256, 0, 0), 256, 128).cpuShares == 0);  // not sent: the kernel's default
  CHECK(limitsFor(resources(256, 0, 1), 256, 128).cpuShares == 2);
  CHECK(limitsFor(resources(256, 0, 300000), 256, 128).cpuShares == 262144);
  CHECK(limitsFor(resources(256, 0, 2000, "1,3"), 256, 128).cpusetCpus == "1,3");
  CHECK(limitsFor(resources(256, 0, 2000), 256, 128).cpuQuotaMicros == 0);  // no hard limit unless asked
}

TEST_CASE("task limits: on a node of more than 262144 MHz, shares are scaled so the whole node is the largest") {
  // 128 cores of 2.5 GHz: 320000 MHz.
  CHECK(limitsFor(resources(256, 0, 2500), 256, 128, 320000).cpuShares == 2048);
  CHECK(limitsFor(resources(256, 0, 320000), 256, 128, 320000).cpuShares == 262144);
  CHECK(limitsFor(resources(256, 0, 1), 256, 128, 320000).cpuShares == 2);
  CHECK(limitsFor(resources(256, 0, 2500), 256, 128, 262143).cpuShares == 2500);  // below: a share per MHz
}

TEST_CASE("task limits: cpu_hard_limit is docker's CFS quota, PercentTicks x period x the host's CPUs") {
  // 1000 MHz of a 2-core node of 4000 MHz usable: half a core.
  auto half = hardLimitFor(1000, 0.25, 2);
  REQUIRE(half.ok());
  CHECK(half->cpuQuotaMicros == 50000);
  CHECK(half->cpuPeriodMicros == 100000);
  CHECK(half->cpuShares == 1000);  // the weight stays as well

  SUBCASE("another period scales the quota with it") {
    auto shortPeriod = hardLimitFor(1000, 0.25, 2, 20000);
    REQUIRE(shortPeriod.ok());
    CHECK(shortPeriod->cpuQuotaMicros == 10000);
    CHECK(shortPeriod->cpuPeriodMicros == 20000);
  }
  SUBCASE("a quota under the kernel's 1 ms is refused, naming the option") {
    auto tiny = hardLimitFor(10, 0.0025, 2, 1000);
    REQUIRE_FALSE(tiny.ok());
    CHECK(tiny.error().code == ErrorCode::kInvalidArgument);
    CHECK(tiny.error().describe().find("config key \"cpu_hard_limit\"") != std::string::npos);
    CHECK(tiny.error().describe().find("below the kernel's smallest") != std::string::npos);
  }
  SUBCASE("without PercentTicks there is nothing to compute it from") {
    auto none = hardLimitFor(1000, 0, 2);
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().describe().find("PercentTicks") != std::string::npos);
  }
}

}  // namespace
}  // namespace s2z::driver
