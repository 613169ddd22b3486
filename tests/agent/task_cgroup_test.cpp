// The task's cgroups: which directories Nomad's cpuset_cgroup leads to on
// each kind of host (from a mount table), then made, charged and removed on
// this host's real hierarchies: cgroup v2, and v1 laid out as Nomad 1.7's
// client lays it out (cgroupslib.Init).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <fstream>

#include "agent/task_cgroup.h"
#include "agent/task_cgroup_limits.h"
#include "tests/scratch_dir.h"

namespace s2z::agent {
namespace {

const std::string kScope = "8e9f5d3c-1b2a-4c5d-9e8f-0a1b2c3d4e5f.web";

// A cgroup v1 host as systemd mounts it (cpu and cpuacct share a hierarchy).
std::vector<CgroupMount> v1Host() {
  return {{"/sys/fs/cgroup/cpuset", false, {"rw", "cpuset"}},
          {"/sys/fs/cgroup/cpu,cpuacct", false, {"rw", "cpu", "cpuacct"}},
          {"/sys/fs/cgroup/memory", false, {"rw", "memory"}},
          {"/sys/fs/cgroup/freezer", false, {"rw", "freezer"}},
          {"/sys/fs/cgroup/unified", true, {}}};
}

TEST_CASE("task cgroup: cgroup v2 - the scope Nomad names is the task's one cgroup") {
  auto cg = resolveTaskCgroup("/sys/fs/cgroup/nomad.slice/share.slice/" + kScope + ".scope", kScope,
                              {{"/sys/fs/cgroup", true, {}}});
  REQUIRE(cg.ok());
  CHECK_FALSE(cg->v1);
  REQUIRE(cg->own.size() == 1);
  CHECK(cg->own[0] == "/sys/fs/cgroup/nomad.slice/share.slice/" + kScope + ".scope");
  CHECK(cg->memory == cg->own[0]);
  CHECK(cg->cpu == cg->own[0]);
  CHECK(cg->cpuset.empty());
  CHECK(cg->joined() == cg->own);
}

TEST_CASE("task cgroup: cgroup v1 - the share partition is joined, the task gets memory, cpu and freezer under Nomad's parent") {
  auto cg = resolveTaskCgroup("/sys/fs/cgroup/cpuset/nomad/share", kScope, v1Host());
  REQUIRE(cg.ok());
  CHECK(cg->v1);
  CHECK(cg->cpuset == "/sys/fs/cgroup/cpuset/nomad/share");
  std::vector<std::filesystem::path> own = {"/sys/fs/cgroup/memory/nomad/" + kScope,
                                            "/sys/fs/cgroup/cpu,cpuacct/nomad/" + kScope,
                                            "/sys/fs/cgroup/freezer/nomad/" + kScope};
  CHECK(cg->own == own);
  CHECK(cg->memory == own[0]);
  CHECK(cg->cpu == own[1]);
  CHECK_FALSE(cg->reservedCpuset);  // the shared partition: the client's cores
  CHECK(cg->joined().back() == cg->cpuset);

  SUBCASE("a reserved-cores task's own cpuset, under a custom cgroup_parent") {
    auto reserved = resolveTaskCgroup("/sys/fs/cgroup/cpuset/ops/nomad/reserve/" + kScope, kScope, v1Host());
    REQUIRE(reserved.ok());
    CHECK(reserved->cpuset == "/sys/fs/cgroup/cpuset/ops/nomad/reserve/" + kScope);
    CHECK(reserved->memory == "/sys/fs/cgroup/memory/ops/nomad/" + kScope);
    CHECK(reserved->reservedCpuset);
  }
}

TEST_CASE("task cgroup: paths that are not Nomad 1.7+'s are refused as unimplemented, nothing resolved") {
  for (std::string path : {"/sys/fs/cgroup/cpuset/nomad/" + kScope,  // Nomad 1.6's shape
                           std::string("/sys/fs/cgroup/memory/nomad/share"),  // not the cpuset hierarchy
                           std::string("/tmp/a.web.scope")}) {
    CAPTURE(path);
    auto cg = resolveTaskCgroup(path, kScope, v1Host());
    REQUIRE_FALSE(cg.ok());
    CHECK(cg.error().code == ErrorCode::kUnimplemented);
  }
  auto noScope = resolveTaskCgroup("/sys/fs/cgroup/cpuset/nomad/share", "", v1Host());
  REQUIRE_FALSE(noScope.ok());
  CHECK(noScope.error().code == ErrorCode::kUnimplemented);
}

const CgroupMount* mounted(const std::vector<CgroupMount>& mounts, bool v2, const std::string& controller) {
  for (const auto& m : mounts) {
    if (m.v2 != v2) continue;
    if (v2 || std::find(m.controllers.begin(), m.controllers.end(), controller) != m.controllers.end()) return &m;
  }
  return nullptr;
}

TEST_CASE("task cgroup: on this host's cgroup v2, made under its parent, removed once empty; a missing parent fails") {
  auto mounts = readCgroupMounts();
  const CgroupMount* v2 = mounted(mounts, true, "");
  REQUIRE_MESSAGE(v2 != nullptr, "no cgroup2 mount in /proc/self/mountinfo");
  auto scope = v2->dir / ("s2z-agent-test-" + std::to_string(::getpid()) + ".scope");
  auto cg = resolveTaskCgroup(scope, kScope, mounts);
  REQUIRE(cg.ok());
  REQUIRE(ensureTaskCgroup(*cg).ok());
  CHECK(std::filesystem::exists(scope / "cgroup.procs"));
  CHECK(ensureTaskCgroup(*cg).ok());  // again: already there
  auto charged = cgroupMemoryCharge(*cg);
  if (std::filesystem::exists(scope / "memory.current")) {
    CHECK(charged.ok());
  } else {  // a hybrid host: cgroup2 without the memory controller
    CHECK(charged.error().code == ErrorCode::kNotFound);
  }
  REQUIRE(removeTaskCgroup(*cg).ok());
  CHECK_FALSE(std::filesystem::exists(scope));
  CHECK(removeTaskCgroup(*cg).ok());  // idempotent

  auto orphan = resolveTaskCgroup(v2->dir / "s2z-no-such.slice" / "a.web.scope", kScope, mounts);
  REQUIRE(orphan.ok());
  auto missing = ensureTaskCgroup(*orphan);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kFailedPrecondition);
}

// Removes the directories a test made, last made first, whatever check
// ended the test.
struct MadeDirs {
  std::vector<std::filesystem::path> dirs;
  ~MadeDirs() {
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
  }
};

std::string readLine(const std::filesystem::path& file) {
  std::string value;
  std::getline(std::ifstream(file), value);
  return value;
}

void copyFile(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::ofstream(to) << readLine(from);
}

TaskLimits coresOnly(std::string cores) {
  TaskLimits limits;
  limits.cpusetCpus = std::move(cores);
  return limits;
}

// Whether a child process can move itself into the cgroup dir (a v1 cpuset
// without cores refuses it: ENOSPC).
bool childCanJoin(const std::filesystem::path& dir) {
  const std::string procs = (dir / "cgroup.procs").string();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only system calls after the fork: "0" is the writer itself.
    int fd = ::open(procs.c_str(), O_WRONLY);
    ::_exit(fd >= 0 && ::write(fd, "0", 1) == 1 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A child that moves itself into the cgroup dir and spins for `ms` of wall
// time; what CPU time it got.
rusage spinInCgroup(const std::filesystem::path& dir, long ms) {
  const std::string procs = (dir / "cgroup.procs").string();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only system calls after the fork.
    int fd = ::open(procs.c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(1);
    timespec start{}, now{};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    do {
      ::clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
    ::_exit(0);
  }
  int status = 0;
  rusage used{};
  ::wait4(pid, &status, 0, &used);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return used;
}

TEST_CASE("task cgroup: on this host's cgroup v1, the task's cgroups under a Nomad-made parent, its memory charge read") {
  auto mounts = readCgroupMounts();
  const CgroupMount* cpuset = mounted(mounts, false, "cpuset");
  const CgroupMount* memory = mounted(mounts, false, "memory");
  if (!cpuset || !memory) {
    MESSAGE("no cgroup v1 cpuset and memory hierarchies on this host: nothing to test");
    return;
  }
  // What Nomad's client makes at start, with cgroup_parent = this name.
  const std::string parent = "s2zt-nomad-" + std::to_string(::getpid());
  auto share = cpuset->dir / parent / "share";
  MadeDirs made{{cpuset->dir / parent, share}};
  REQUIRE(std::filesystem::create_directories(share));
  for (const auto* file : {"cpuset.cpus", "cpuset.mems"}) {
    copyFile(cpuset->dir / file, cpuset->dir / parent / file);
    copyFile(cpuset->dir / file, share / file);
  }
  std::vector<std::filesystem::path> parents = {memory->dir / parent};
  for (const char* controller : {"cpu", "freezer"}) {
    if (const auto* m = mounted(mounts, false, controller)) parents.push_back(m->dir / parent);
  }

  auto cg = resolveTaskCgroup(share, kScope, mounts);
  REQUIRE(cg.ok());
  CHECK(cg->memory == memory->dir / parent / kScope);
  auto early = ensureTaskCgroup(*cg);  // the client has not made the controllers' parents yet
  REQUIRE_FALSE(early.ok());
  CHECK(early.error().code == ErrorCode::kFailedPrecondition);
  for (const auto& p : parents) {
    made.dirs.push_back(p);
    std::filesystem::create_directories(p);
  }

  made.dirs.insert(made.dirs.end(), cg->own.begin(), cg->own.end());
  REQUIRE(ensureTaskCgroup(*cg).ok());
  for (const auto& dir : cg->own) CHECK(std::filesystem::exists(dir / "cgroup.procs"));
  auto charged = cgroupMemoryCharge(*cg);
  REQUIRE(charged.ok());
  CHECK(*charged == 0);  // nothing in it yet
  auto oomKills = cgroupOomKills(*cg);
  REQUIRE(oomKills.ok());
  CHECK(*oomKills == 0);

  // Nomad's limits, in the kernel's own files: they read back as written.
  TaskLimits limits;
  limits.memoryMaxBytes = 384u << 20;
  limits.memoryLowBytes = 256u << 20;
  limits.cpuShares = 500;
  limits.cpusetCpus = "0";
  limits.cpuQuotaMicros = 10000;  // cpu_hard_limit: a tenth of one core
  limits.cpuPeriodMicros = 100000;
  REQUIRE(applyTaskLimits(*cg, limits).ok());
  CHECK(readLine(cg->memory / "memory.limit_in_bytes") == "402653184");
  CHECK(readLine(cg->memory / "memory.soft_limit_in_bytes") == "268435456");
  if (!cg->cpu.empty()) {
    CHECK(readLine(cg->cpu / "cpu.shares") == "500");
    CHECK(readLine(cg->cpu / "cpu.cfs_period_us") == "100000");
    CHECK(readLine(cg->cpu / "cpu.cfs_quota_us") == "10000");
    // A process that wants a whole core gets its tenth, and the task's
    // stats say it was held back.
    constexpr long kSpinMs = 400;
    rusage used = spinInCgroup(cg->cpu, kSpinMs);
    const long cpuMs = (used.ru_utime.tv_sec + used.ru_stime.tv_sec) * 1000 +
                       (used.ru_utime.tv_usec + used.ru_stime.tv_usec) / 1000;
    MESSAGE("a spinner held to a tenth of a core: " << cpuMs << " ms of CPU in " << kSpinMs << " ms");
    CHECK(cpuMs < kSpinMs / 2);
    auto throttled = cgroupCpuThrottling(*cg);
    REQUIRE(throttled.ok());
    CHECK(throttled->periods >= 2);
    CHECK(throttled->nanoseconds > 0);
  }
  CHECK(readLine(share / "cpuset.cpus") == readLine(cpuset->dir / "cpuset.cpus"));  // the shared partition's cores untouched
  REQUIRE(removeTaskCgroup(*cg).ok());
  for (const auto& dir : cg->own) CHECK_FALSE(std::filesystem::exists(dir));
  CHECK(std::filesystem::exists(share));  // the client's, not the task's
}

TEST_CASE("task cgroup: on this host's cgroup v1, a reserved-cores task's own cpuset gets its cores, so its processes can join") {
  auto mounts = readCgroupMounts();
  const CgroupMount* cpuset = mounted(mounts, false, "cpuset");
  if (!cpuset) {
    MESSAGE("no cgroup v1 cpuset hierarchy on this host: nothing to test");
    return;
  }
  // What Nomad's client makes: the reserve partition at start (with the
  // reserved cores), the task's cpuset under it at prestart (the wrangler's
  // Setup copies only cpuset.mems: the cores are the driver's to write).
  const std::string parent = "s2zt-nomad-" + std::to_string(::getpid());
  auto reserve = cpuset->dir / parent / "reserve";
  auto own = reserve / kScope;
  MadeDirs made{{cpuset->dir / parent, reserve, own}};
  REQUIRE(std::filesystem::create_directories(own));
  for (const auto& dir : {cpuset->dir / parent, reserve, own}) {
    copyFile(cpuset->dir / "cpuset.mems", dir / "cpuset.mems");
  }
  copyFile(cpuset->dir / "cpuset.cpus", cpuset->dir / parent / "cpuset.cpus");
  std::ofstream(reserve / "cpuset.cpus") << "0";

  auto cg = resolveTaskCgroup(own, kScope, mounts);
  REQUIRE(cg.ok());
  CHECK(cg->reservedCpuset);
  CHECK_FALSE(childCanJoin(own));  // no cores yet
  REQUIRE(applyTaskLimits(*cg, coresOnly("0")).ok());
  CHECK(readLine(own / "cpuset.cpus") == "0");
  CHECK(childCanJoin(own));

  SUBCASE("cores outside the reserve partition are refused, naming the file") {
    auto refused = applyTaskLimits(*cg, coresOnly("4095"));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().describe().find((own / "cpuset.cpus").string()) != std::string::npos);
  }
}

TEST_CASE("task cgroup: throttling read from cpu.stat in each version's units") {
  tests::ScratchDir scratch("s2zt-cpustat");
  const auto& dir = scratch.path;
  REQUIRE_FALSE(dir.empty());
  TaskCgroup v2;
  v2.cpu = dir;
  std::ofstream(dir / "cpu.stat") << "usage_usec 812\nuser_usec 500\nsystem_usec 312\nnr_periods 40\n"
                                     "nr_throttled 7\nthrottled_usec 2500\n";
  auto read = cgroupCpuThrottling(v2);
  REQUIRE(read.ok());
  CHECK(read->periods == 7);
  CHECK(read->nanoseconds == 2500000);

  TaskCgroup v1 = v2;
  v1.v1 = true;
  std::ofstream(dir / "cpu.stat") << "nr_periods 40\nnr_throttled 3\nthrottled_time 123456789\n";
  read = cgroupCpuThrottling(v1);
  REQUIRE(read.ok());
  CHECK(read->periods == 3);
  CHECK(read->nanoseconds == 123456789);

  std::filesystem::remove(dir / "cpu.stat");
  CHECK(cgroupCpuThrottling(v1).error().code == ErrorCode::kNotFound);
  CHECK(cgroupCpuThrottling(TaskCgroup{}).error().code == ErrorCode::kNotFound);
}

}  // namespace
}  // namespace s2z::agent
