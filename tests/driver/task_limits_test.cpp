// Nomad's resources of a task as the limits of its cgroups: the memory
// rules of Nomad's executor (memoryLimits) with the VMM's overhead added,
// and its CPU shares clamped as the kernel takes them.
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

TEST_CASE("task limits: memory is a hard limit of the guest's RAM plus the VMM's overhead") {
  auto limits = taskLimitsFor(resources(256, 0, 500), 256, 128);
  CHECK(limits.memoryMaxBytes == 384 * kMiB);
  CHECK(limits.memoryLowBytes == 0);
  CHECK(limits.cpuShares == 500);
  CHECK(limits.cpusetCpus.empty());

  SUBCASE("no overhead: the guest's RAM alone") {
    CHECK(taskLimitsFor(resources(256, 0, 500), 256, 0).memoryMaxBytes == 256 * kMiB);
  }
  SUBCASE("the guest's RAM from a default (no memory_mb sent)") {
    CHECK(taskLimitsFor(resources(0, 0, 500), 2048, 128).memoryMaxBytes == (2048 + 128) * kMiB);
  }
}

TEST_CASE("task limits: memory_max (oversubscription) is the hard limit, memory the reservation") {
  auto limits = taskLimitsFor(resources(256, 1024, 500), 256, 128);
  CHECK(limits.memoryMaxBytes == (1024 + 128) * kMiB);
  CHECK(limits.memoryLowBytes == (256 + 128) * kMiB);

  SUBCASE("memory_max = -1: no hard limit, memory reserved") {
    auto unlimited = taskLimitsFor(resources(256, -1, 500), 256, 128);
    CHECK(unlimited.memoryMaxBytes == 0);
    CHECK(unlimited.memoryLowBytes == (256 + 128) * kMiB);
  }
  SUBCASE("memory_max not above memory: memory is the hard limit") {
    auto same = taskLimitsFor(resources(256, 256, 500), 256, 128);
    CHECK(same.memoryMaxBytes == 384 * kMiB);
    CHECK(same.memoryLowBytes == 0);
  }
}

TEST_CASE("task limits: cpu shares clamped to the kernel's range, reserved cores passed on") {
  CHECK(taskLimitsFor(resources(256, 0, 0), 256, 128).cpuShares == 0);  // not sent: the kernel's default
  CHECK(taskLimitsFor(resources(256, 0, 1), 256, 128).cpuShares == 2);
  CHECK(taskLimitsFor(resources(256, 0, 300000), 256, 128).cpuShares == 262144);
  CHECK(taskLimitsFor(resources(256, 0, 2000, "1,3"), 256, 128).cpusetCpus == "1,3");
}

}  // namespace
}  // namespace s2z::driver
