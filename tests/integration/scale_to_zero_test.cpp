// Scale to zero seen from Nomad's side: an idle VM goes to sleep (task event),
// the task stays running (WaitTask keeps blocking, stats keep flowing), and
// the first HTTP request wakes it and is answered, and qemu-guest-agent in
// the guest gets its clock set again. Then the memory Nomad sees: the VMM in
// the cgroups Nomad's client made for the task, and their charge in
// TaskStats, running and in a deep sleep, and the limits Nomad's resources
// set on them. One VM boot each.
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include "standin/nomad_cgroups.h"
#include "tests/integration/test_env.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

bool eventMatching(const NomadClient& c, const std::string& allocId, const std::string& word) {
  for (const auto& e : c.events()) {
    std::string m = e.message;
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (e.allocId == allocId && m.find(word) != std::string::npos) return true;
  }
  return false;
}

std::string firstLine(const std::string& file) {
  std::string line;
  std::getline(std::ifstream(file), line);
  return line;
}

}  // namespace

TEST_CASE("an idle task sleeps, stays running for Nomad, and wakes on the first request") {
  REQUIRE(guestAvailable());
  TestEnv env;
  // As a Nomad 1.6 client: no NomadDriverConfig.Topology.
  auto plugin = env.loadPlugin([](ClientOptions& o) { o.sendTopology = false; });
  NomadClient& c = *plugin;

  auto started = c.startTask(webTask("  scale_to_zero: { enabled: true, idle_timeout: \"3s\" }\n"));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  const StartedTask& t = *started;
  REQUIRE(env.waitHttp(t.networkAddr, 8080, 30s));

  REQUIRE_MESSAGE(c.waitUntil(30s, [&] { return eventMatching(c, t.allocId, "sleep"); }),
                  "no sleep event");
  for (const auto& e : c.events()) {
    MESSAGE("event: " << e.message);
    // What the client routes events by, and the time it shows.
    CHECK(e.allocId == t.allocId);
    CHECK(e.taskName == "web");
    CHECK(e.taskId == t.id);
    CHECK(e.hasTimestamp);
  }
  auto running = c.waitTask(t.id, 500ms);
  REQUIRE_FALSE(running.ok());
  CHECK(running.error().code == ErrorCode::kTimeout);
  size_t before = c.statsSamples(t.id).size();
  CHECK(c.waitForStats(t.id, before + 1, 5s));

  auto wakeAt = std::chrono::steady_clock::now();
  auto reply = env.httpGet(t.networkAddr, 8080, "/", 10s);
  auto wakeMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - wakeAt).count();
  CHECK(reply.status == 200);
  MESSAGE("request to a sleeping VM answered in " << wakeMs << " ms");
  CHECK(c.waitUntil(10s, [&] { return eventMatching(c, t.allocId, "wok") || eventMatching(c, t.allocId, "wake"); }));
  // The test guest runs qemu-guest-agent: its frozen clock was set again.
  std::map<std::string, std::string> woken;
  for (const auto& e : c.events()) {
    if (e.allocId == t.allocId && e.message == "Woken") woken = e.annotations;
  }
  MESSAGE("Woken: clock=" << woken["clock"] << " lag=" << woken["clock_lag_ms"] << " error=" << woken["clock_error_ms"]);
  CHECK(woken["clock"] == "corrected by qemu-guest-agent");
  CHECK(std::stod(woken["clock_lag_ms"]) > 100);  // frozen while it slept
  CHECK(std::fabs(std::stod(woken["clock_error_ms"])) < 50);

  REQUIRE(c.stopTask(t.id, 5s).ok());
  auto exit = c.waitTask(t.id, 20s);
  REQUIRE_MESSAGE(exit.ok(), s2z::tests::errText(exit));
  // The restored guest still answers the power button: it powers itself off
  // (QEMU exits 0) instead of being killed when the kill timeout runs out.
  CHECK(exit->hasResult);
  CHECK_MESSAGE(exit->exitCode == 0, exit->err);
  CHECK(exit->signal == 0);
  CHECK(exit->err.empty());
  REQUIRE(c.destroyTask(t.id).ok());
  CHECK(env.links().empty());
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
}

namespace {

std::vector<pid_t> cgroupMembers(const std::string& dir) {
  std::ifstream in(dir + "/cgroup.procs");
  std::vector<pid_t> pids;
  for (pid_t pid = 0; in >> pid;) pids.push_back(pid);
  return pids;
}

// What runs in a cgroup, by kind, sorted: "vmm" (QEMU), "log holder"
// (s2z-log-holder-<hash>, its comm cut to 15 characters), or the comm.
std::vector<std::string> processKinds(const std::string& dir) {
  std::vector<std::string> kinds;
  for (pid_t pid : cgroupMembers(dir)) {
    std::string comm;
    std::getline(std::ifstream("/proc/" + std::to_string(pid) + "/comm"), comm);
    if (comm.rfind("qemu", 0) == 0) comm = "vmm";
    if (comm.rfind("s2z-log-holder", 0) == 0) comm = "log holder";
    kinds.push_back(comm);
  }
  std::sort(kinds.begin(), kinds.end());
  return kinds;
}

// Nomad's cgroup tree, as the client makes it at its start; nullopt, with
// a message saying why, on a host without one (or without v1 when the case
// needs v1's files).
std::optional<NomadCgroups> nomadCgroupTree(bool needV1 = false) {
  NomadCgroups tree = NomadCgroups::init();
  if (tree.mode() == NomadCgroups::Mode::kOff || (needV1 && tree.mode() != NomadCgroups::Mode::kV1)) {
    MESSAGE("no cgroup " << (needV1 ? "v1 " : "") << "tree for Nomad on this host: nothing to test");
    return std::nullopt;
  }
  return tree;
}

// The task runner's stop hooks, should a check end a test early: the
// wrangler's kill and removal of the task's cgroups, the partition's
// release of its cores.
struct StopHooks {
  const NomadCgroups& nomad;
  const StartedTask& task;
  ~StopHooks() { nomad.tearDownTask(task.allocId, task.name, task.reservedCores); }
};

// The charge in the newest TaskStats sample that reports one.
std::optional<uint64_t> reportedCharge(const NomadClient& c, const std::string& taskId) {
  auto samples = c.statsSamples(taskId);
  for (auto it = samples.rbegin(); it != samples.rend(); ++it) {
    if (std::find(it->memoryMeasured.begin(), it->memoryMeasured.end(), "USAGE") != it->memoryMeasured.end()) {
      return it->memoryUsage;
    }
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("the task's VMM and log holder live in the cgroups Nomad made for it, under its limits; TaskStats report their memory charge, which a deep sleep gives back") {
  REQUIRE(guestAvailable());
  const auto tree = nomadCgroupTree();
  if (!tree) return;
  const NomadCgroups& nomad = *tree;
  TestEnv env;
  auto plugin = env.loadPlugin();
  NomadClient& c = *plugin;

  auto started = c.startTask(webTask("  scale_to_zero: { enabled: true, idle_timeout: \"3s\", sleep: deep }\n"));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  const StartedTask& t = *started;
  StopHooks stopHooks{nomad, t};
  REQUIRE(env.waitHttp(t.networkAddr, 8080, 30s));
  const std::string memory = nomad.memoryCgroup(t.allocId, t.name);
  auto charge = [&] {
    uint64_t bytes = 0;
    std::ifstream(memory + "/" + nomad.memoryChargeFile()) >> bytes;
    return bytes;
  };

  // Running: the VMM and the log holder are the task's processes in its
  // memory cgroup, and the charge reported to Nomad is the kernel's (the VMM
  // and its guest RAM's cache).
  const std::vector<std::string> awake = {"log holder", "vmm"};
  CHECK(processKinds(memory) == awake);

  // Nomad's resources (cpu 500, memory 256) are the limits of those cgroups,
  // set by the driver as Nomad's executor sets an exec task's: the guest's
  // RAM plus the VMM's overhead (the plugin's default, 128 MiB), and the
  // cpu as shares (v2: their weight).
  const bool v1 = nomad.mode() == NomadCgroups::Mode::kV1;
  const std::string cpu = nomad.controllerCgroup("cpu", t.allocId, t.name);
  CHECK(firstLine(memory + (v1 ? "/memory.limit_in_bytes" : "/memory.max")) == std::to_string((256 + 128) << 20));
  CHECK(firstLine(cpu + (v1 ? "/cpu.shares" : "/cpu.weight")) == (v1 ? "500" : "58"));
  std::optional<uint64_t> running;
  REQUIRE(c.waitUntil(10s, [&] { return (running = reportedCharge(c, t.id)).has_value(); }));
  MESSAGE("running: TaskStats usage " << *running / 1048576.0 << " MiB, " << memory << " "
          << charge() / 1048576.0 << " MiB");
  CHECK(*running > 64ull << 20);
  CHECK(std::llabs(static_cast<long long>(charge()) - static_cast<long long>(*running)) < (32ll << 20));

  // Deep asleep: only the log holder left in the task's cgroup, and the
  // charge given back (what stays is the holder's ~44 KiB and the
  // first-reader charge of shared files: QEMU's binary and libraries, the
  // guest kernel; agent/README.md).
  REQUIRE(c.waitUntil(30s, [&] { return eventMatching(c, t.allocId, "sleeping"); }));
  CHECK(c.waitUntil(10s, [&] { return processKinds(memory) == std::vector<std::string>{"log holder"}; }));
  size_t before = c.statsSamples(t.id).size();
  REQUIRE(c.waitForStats(t.id, before + 2, 10s));
  auto asleep = reportedCharge(c, t.id);
  REQUIRE(asleep.has_value());
  MESSAGE("deep asleep: TaskStats usage " << *asleep / 1048576.0 << " MiB");
  CHECK(*asleep < *running / 4);

  // The wake's VMM joins the same cgroups and is charged there again.
  auto reply = env.httpGet(t.networkAddr, 8080, "/", 10s);
  CHECK(reply.status == 200);
  CHECK(processKinds(memory) == awake);
  CHECK(charge() > *asleep);

  REQUIRE(c.stopTask(t.id, 5s).ok());
  REQUIRE(c.waitTask(t.id, 20s).ok());
  REQUIRE(c.destroyTask(t.id).ok());
  CHECK_FALSE(std::filesystem::exists(memory));
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
}

TEST_CASE("a task with reserved cores runs on them alone: the driver gives the task's own cpuset the cores Nomad reserved") {
  REQUIRE(guestAvailable());
  const auto tree = nomadCgroupTree();
  if (!tree) return;
  const NomadCgroups& nomad = *tree;
  auto cores = nomad.reserveCores(1);
  REQUIRE_MESSAGE(cores.ok(), s2z::tests::errText(cores));
  TestEnv env;
  auto plugin = env.loadPlugin();
  NomadClient& c = *plugin;

  auto task = webTask();
  task.cores = 1;  // resources { cores = 1 }: cpuset_cpus and the task's own cpuset
  auto started = c.startTask(task);
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  const StartedTask& t = *started;
  StopHooks stopHooks{nomad, t};
  CHECK(t.reservedCores == *cores);
  REQUIRE(env.waitHttp(t.networkAddr, 8080, 30s));

  // The client made the task's cpuset without cores; the driver gave it
  // the reserved ones before its VMM and log holder joined, so the kernel
  // runs them there and nowhere else.
  const std::string cpuset = nomad.cpusetCgroup(t.allocId, t.name, *cores);
  CHECK(firstLine(cpuset + "/cpuset.cpus") == *cores);
  CHECK(processKinds(cpuset) == std::vector<std::string>{"log holder", "vmm"});
  for (pid_t pid : cgroupMembers(cpuset)) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string allowed;
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Cpus_allowed_list:", 0) == 0) allowed = line.substr(line.find_first_not_of(" \t", 18));
    }
    CHECK_MESSAGE(allowed == *cores, "pid " << pid);
  }

  REQUIRE(c.stopTask(t.id, 5s).ok());
  REQUIRE(c.waitTask(t.id, 20s).ok());
  REQUIRE(c.destroyTask(t.id).ok());
  CHECK_FALSE(std::filesystem::exists(cpuset));
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
}

TEST_CASE("cpu_hard_limit holds the task's VMM to its share of the node, and TaskStats report the throttling") {
  REQUIRE(guestAvailable());
  const auto tree = nomadCgroupTree();
  if (!tree) return;
  const NomadCgroups& nomad = *tree;
  TestEnv env;
  auto plugin = env.loadPlugin();
  NomadClient& c = *plugin;

  // Half of one core: the client's PercentTicks (cpu / the node's compute)
  // times docker's period and the host's CPUs is 50 ms per 100 ms.
  cpu_set_t affinity;
  REQUIRE(::sched_getaffinity(0, sizeof(affinity), &affinity) == 0);
  const int cpus = CPU_COUNT(&affinity);
  const double node = NomadClient::nodeComputeMhz();
  auto task = webTask("  cpu_hard_limit: true\n");
  task.cpuMhz = static_cast<int>(node / (2 * cpus));
  const auto quota = static_cast<int64_t>(task.cpuMhz / node * 100000) * cpus;
  REQUIRE(std::abs(quota - 50000) < 1000);
  auto started = c.startTask(task);
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  const StartedTask& t = *started;
  StopHooks stopHooks{nomad, t};
  const bool v1 = nomad.mode() == NomadCgroups::Mode::kV1;
  const std::string cpu = nomad.controllerCgroup("cpu", t.allocId, t.name);
  if (v1) {
    CHECK(firstLine(cpu + "/cpu.cfs_period_us") == "100000");
    CHECK(firstLine(cpu + "/cpu.cfs_quota_us") == std::to_string(quota));
  } else {
    CHECK(firstLine(cpu + "/cpu.max") == std::to_string(quota) + " 100000");
  }
  // The guest boots on half a core, slower, and serves.
  REQUIRE(env.waitHttp(t.networkAddr, 8080, 60s));

  // A booting guest wants a whole core under TCG: the limit held it back,
  // and Nomad is told so, with the VMM's CPU at the task's share.
  std::vector<standin::StatsSample> samples;
  auto throttled = [&] {
    samples = c.statsSamples(t.id);
    return std::any_of(samples.begin(), samples.end(), [](const auto& s) {
      return std::count(s.cpuMeasured.begin(), s.cpuMeasured.end(), "THROTTLED_PERIODS") > 0 &&
             s.cpuThrottledPeriods > 0 && s.cpuThrottledTime > 0;
    });
  };
  REQUIRE(c.waitUntil(10s, throttled));
  double busiest = 0;
  for (const auto& s : samples) busiest = std::max(busiest, s.cpuPercent);
  MESSAGE("busiest TaskStats sample: " << busiest << "% of a core; throttled " << samples.back().cpuThrottledPeriods
                                       << " periods, " << samples.back().cpuThrottledTime / 1e6 << " ms");
  CHECK(busiest > 20);
  CHECK(busiest < 65);  // 50 and the sampling's jitter; unlimited it is ~100

  REQUIRE(c.stopTask(t.id, 5s).ok());
  REQUIRE(c.waitTask(t.id, 20s).ok());
  REQUIRE(c.destroyTask(t.id).ok());
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
}

TEST_CASE("a VMM the kernel's OOM killer ends in the task's cgroup is an OOM-killed task, as the exec driver reports one") {
  REQUIRE(guestAvailable());
  const auto tree = nomadCgroupTree(/*needV1=*/true);
  if (!tree) return;
  const NomadCgroups& nomad = *tree;
  TestEnv env;
  auto plugin = env.loadPlugin();
  NomadClient& c = *plugin;
  auto started = c.startTask(webTask());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  const StartedTask& t = *started;
  StopHooks stopHooks{nomad, t};
  REQUIRE(env.waitHttp(t.networkAddr, 8080, 30s));

  // A guest cannot drive its VMM into the limit here: its RAM is a file on
  // disk, which the kernel writes back and reclaims instead. So the test
  // makes the OOM itself: a tighter limit, the VMM first in the OOM
  // killer's line (oom_score_adj 1000), and a process of the test that
  // joins the task's memory cgroup and touches more than fits.
  const std::string memory = nomad.memoryCgroup(t.allocId, t.name);
  pid_t vmm = 0;
  for (pid_t pid : cgroupMembers(memory)) {
    if (firstLine("/proc/" + std::to_string(pid) + "/comm").rfind("qemu", 0) == 0) vmm = pid;
  }
  REQUIRE(vmm != 0);
  std::ofstream("/proc/" + std::to_string(vmm) + "/oom_score_adj") << "1000";
  {
    std::ofstream limit(memory + "/memory.limit_in_bytes");
    limit << (128 << 20) << std::flush;
    REQUIRE_MESSAGE(limit, "the kernel did not take a 128 MiB limit");
  }
  pid_t hog = ::fork();
  if (hog == 0) {
    // Only system calls after the fork (the test process has threads).
    std::string procs = memory + "/cgroup.procs";
    int fd = ::open(procs.c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(2);
    const size_t size = 160u << 20;
    auto* bytes = static_cast<char*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (bytes == MAP_FAILED) ::_exit(3);
    for (size_t at = 0; at < size; at += 4096) bytes[at] = 1;
    ::_exit(0);
  }
  REQUIRE(hog > 0);
  int hogStatus = 0;
  ::waitpid(hog, &hogStatus, 0);
  CHECK_FALSE((WIFEXITED(hogStatus) && WEXITSTATUS(hogStatus) > 1));  // it joined and allocated

  auto exit = c.waitTask(t.id, 30s);
  REQUIRE_MESSAGE(exit.ok(), s2z::tests::errText(exit));
  CHECK(exit->oomKilled);
  CHECK(exit->signal == SIGKILL);
  CHECK_MESSAGE(exit->err.find("host's OOM killer") != std::string::npos, exit->err);
  REQUIRE(c.destroyTask(t.id).ok());
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
}
