// Nomad's limits written into a task's cgroups: which control file each
// goes to on cgroup v2, shown on a scope-shaped directory of plain files
// (this host's cgroup2 has no controllers), and the v1 <-> v2 CPU weight
// map. The v1 files are written on this host's real hierarchies in
// task_cgroup_test.cpp.
#include <stdlib.h>

#include <doctest/doctest.h>

#include <fstream>

#include "agent/task_cgroup_limits.h"

namespace s2z::agent {
namespace {

// A directory shaped like a v2 scope: the control files of the controllers
// its parent delegates, as empty files.
struct ScopeDir {
  std::filesystem::path path;
  explicit ScopeDir(std::initializer_list<const char*> files) {
    char tmpl[] = "/tmp/s2z-scope-XXXXXX";
    path = ::mkdtemp(tmpl);
    for (const char* f : files) std::ofstream(path / f);
  }
  ~ScopeDir() { std::filesystem::remove_all(path); }
  TaskCgroup cgroup() const {
    TaskCgroup cg;
    cg.own = {path};
    cg.memory = path;
    cg.cpu = path;
    return cg;
  }
  std::string read(const char* file) const {
    std::string value;
    std::getline(std::ifstream(path / file), value);
    return value;
  }
};

TaskLimits limitsOf(uint64_t memoryMax, uint64_t memoryLow, uint64_t shares, std::string cores) {
  TaskLimits limits;
  limits.memoryMaxBytes = memoryMax;
  limits.memoryLowBytes = memoryLow;
  limits.cpuShares = shares;
  limits.cpusetCpus = std::move(cores);
  return limits;
}

TEST_CASE("task cgroup limits: cpu shares map to v2 weights as runc maps them") {
  CHECK(cpuWeightForShares(0) == 0);  // unset
  CHECK(cpuWeightForShares(2) == 1);
  CHECK(cpuWeightForShares(100) == 17);
  CHECK(cpuWeightForShares(500) == 58);
  CHECK(cpuWeightForShares(1024) == 100);  // the defaults of both
  CHECK(cpuWeightForShares(2048) == 174);
  CHECK(cpuWeightForShares(262144) == 10000);
  CHECK(cpuWeightForShares(1u << 30) == 10000);
}

TEST_CASE("task cgroup limits: cgroup v2 - memory.max, memory.low, cpu.weight and cpuset.cpus of the scope") {
  ScopeDir scope({"memory.max", "memory.low", "cpu.weight", "cpuset.cpus"});
  auto limits = limitsOf(384u << 20, 256u << 20, 2048, "1,3");
  REQUIRE(applyTaskLimits(scope.cgroup(), limits).ok());
  CHECK(scope.read("memory.max") == "402653184");
  CHECK(scope.read("memory.low") == "268435456");
  CHECK(scope.read("cpu.weight") == "174");
  CHECK(scope.read("cpuset.cpus") == "1,3");

  SUBCASE("what is not asked for is not written") {
    ScopeDir bare({"memory.max", "memory.low", "cpu.weight", "cpuset.cpus"});
    REQUIRE(applyTaskLimits(bare.cgroup(), limitsOf(1u << 30, 0, 0, "")).ok());
    CHECK(bare.read("memory.max") == "1073741824");
    CHECK(bare.read("memory.low").empty());
    CHECK(bare.read("cpu.weight").empty());
    CHECK(bare.read("cpuset.cpus").empty());
  }
}

TEST_CASE("task cgroup limits: cgroup v2 - a hard CPU limit is cpu.max, quota then period") {
  ScopeDir scope({"cpu.max", "cpu.weight"});
  auto limits = limitsOf(0, 0, 1024, "");
  limits.cpuQuotaMicros = 50000;
  limits.cpuPeriodMicros = 100000;
  REQUIRE(applyTaskLimits(scope.cgroup(), limits).ok());
  CHECK(scope.read("cpu.max") == "50000 100000");
  CHECK(scope.read("cpu.weight") == "100");

  SUBCASE("no hard limit: cpu.max is the kernel's (\"max\"), not written") {
    ScopeDir bare({"cpu.max"});
    REQUIRE(applyTaskLimits(bare.cgroup(), limitsOf(0, 0, 1024, "")).ok());
    CHECK(bare.read("cpu.max").empty());
  }
}

TEST_CASE("task cgroup limits: a controller the scope does not have is skipped, nothing made in its place") {
  ScopeDir scope({"memory.max"});  // a parent that delegates memory only
  REQUIRE(applyTaskLimits(scope.cgroup(), limitsOf(1u << 30, 0, 500, "0")).ok());
  CHECK(scope.read("memory.max") == "1073741824");
  CHECK_FALSE(std::filesystem::exists(scope.path / "cpu.weight"));
  CHECK_FALSE(std::filesystem::exists(scope.path / "cpuset.cpus"));
}

TEST_CASE("task cgroup limits: a file that refuses its value fails the call, naming the file") {
  ScopeDir scope({});
  std::filesystem::create_directory(scope.path / "memory.max");  // open(O_WRONLY) of a directory: EISDIR
  auto applied = applyTaskLimits(scope.cgroup(), limitsOf(1u << 30, 0, 0, ""));
  REQUIRE_FALSE(applied.ok());
  CHECK(applied.error().describe().find((scope.path / "memory.max").string()) != std::string::npos);
}

}  // namespace
}  // namespace s2z::agent
