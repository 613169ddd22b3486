#include "bench/tier_scenarios.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "agent/agent.h"
#include "agent/process_usage.h"
#include "bench/agent_scenarios.h"
#include "bench/bench_guards.h"
#include "bench/event_log.h"
#include "bench/http_probe.h"
#include "bench/task_logs.h"
#include "common/unique_fd.h"
#include "standin/nomad_cgroups.h"
#include "standin/task_config_builder.h"
#include "vmm/guest_ram_release.h"

namespace s2z::bench {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct TierSetup {
  const char* name;
  const char* idTag;  // in the tasks' ids
  agent::SleepTier tier;
  bool standby;  // standby_vmms covers every task of the tier
  vmm::LightSleepCache cache = vmm::LightSleepCache::kKeep;
};

constexpr TierSetup kTiers[] = {
    {"light", "light", agent::SleepTier::kLight, false},
    {"light, cache dropped", "light-drop", agent::SleepTier::kLight, false, vmm::LightSleepCache::kDrop},
    {"light, kept mapped", "light-mapped", agent::SleepTier::kLight, false, vmm::LightSleepCache::kMapped},
    {"deep", "deep", agent::SleepTier::kDeep, false},
    {"deep + standby", "sdeep", agent::SleepTier::kDeep, true},
};

double annotation(const agent::InstanceEvent& e, const std::string& key) {
  auto it = e.annotations.find(key);
  return it == e.annotations.end() ? 0.0 : std::atof(it->second.c_str());
}

uint64_t allocatedBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += uint64_t(st.st_blocks) * 512;
  }
  return total;
}

// MemTotal - MemAvailable: what the host cannot hand out right now.
uint64_t hostUsedBytes() {
  std::ifstream in("/proc/meminfo");
  uint64_t total = 0, available = 0;
  for (std::string key; in >> key;) {
    uint64_t kib = 0;
    in >> kib;
    if (key == "MemTotal:") total = kib;
    if (key == "MemAvailable:") available = kib;
    in.ignore(64, '\n');
  }
  return (total - std::min(total, available)) * 1024;
}

TierFootprint footprint(agent::Instance& instance) {
  const agent::InstanceRecord r = instance.record();
  TierFootprint f;
  agent::ResourceUsage usage = instance.usage();
  f.cgroupBytes = usage.cgroupBytes;
  f.cgroupMeasured = usage.cgroupMeasured;
  uint64_t anon = 0;
  if (r.vmm.pid != 0) {
    if (auto t = agent::readProcessTimes(r.vmm.pid); t.ok()) {
      f.vmmRssBytes = t->rssBytes;
      anon = t->anonBytes;
    }
  }
  UniqueFd ram(::open((r.runDir / "guest-ram").c_str(), O_RDONLY | O_CLOEXEC));
  if (ram) {
    if (auto cached = vmm::cachedBytes(ram.get()); cached.ok()) f.ramCacheBytes = *cached;
  }
  f.heldBytes = anon + f.ramCacheBytes;
  f.diskBytes = allocatedBytes(r.runDir);
  return f;
}

// The cgroups Nomad's client makes for a task, killed and removed once the
// task is destroyed (declared before its InstanceGuard).
struct TaskCgroupsGuard {
  TaskCgroupsGuard() = default;
  TaskCgroupsGuard(const TaskCgroupsGuard&) = delete;
  TaskCgroupsGuard& operator=(const TaskCgroupsGuard&) = delete;
  const standin::NomadCgroups* nomad = nullptr;
  std::string allocId, name;
  ~TaskCgroupsGuard() {
    if (nomad) nomad->tearDownTask(allocId, name);
  }
};

// One task of a tier: its spec, logs, events and guards.
struct BenchTask {
  std::string id;
  TaskLogs logs;
  EventLog events;
  TaskCgroupsGuard cgroups;
  std::unique_ptr<InstanceGuard> guard;
  std::string address() const { return guard->instance->record().network.address; }
};

Result<std::unique_ptr<BenchTask>> startTask(const BenchConfig& c, agent::Agent& agent, const TierSetup& tier,
                                             const standin::NomadCgroups& nomad, const std::string& id,
                                             uint64_t memoryMib) {
  auto task = std::make_unique<BenchTask>();
  task->id = id;
  auto logs = openTaskLogs(c.workDir, id);
  if (!logs.ok()) return logs.error().wrap("task logs");
  task->logs = std::move(*logs);
  agent::InstanceSpec spec = guestSpec(c, id, true, task->logs);
  spec.sleepTier = tier.tier;
  spec.lightSleepCache = tier.cache;
  spec.memoryMib = memoryMib;
  // In the cgroups Nomad would give it, so its charge is the kernel's.
  task->cgroups.allocId = standin::randomUuid();
  task->cgroups.name = "web";
  task->cgroups.nomad = &nomad;
  nomad.setUpTask(task->cgroups.allocId, task->cgroups.name);
  spec.cgroup = nomad.cpusetCgroup(task->cgroups.allocId, task->cgroups.name);
  spec.cgroupScope = task->cgroups.allocId + "." + task->cgroups.name;
  auto started = agent.start(spec, task->events.sink());
  if (!started.ok()) return started.error().wrap("start " + id);
  task->guard.reset(new InstanceGuard{agent, *started, id});
  return task;
}

Result<void> wakeCycles(const BenchConfig& c, agent::Agent& agent, const TierSetup& tier,
                        const standin::NomadCgroups& nomad, TierResult& out, TierResults& all) {
  auto task = startTask(c, agent, tier, nomad, std::string("tier-") + tier.idTag, 256);
  if (!task.ok()) return task.error();
  BenchTask& t = **task;
  if (!waitForHttp(t.address(), c.guestPort, 90s, "/")) {
    return makeError(ErrorCode::kTimeout, "guest at " + t.address() + " never answered HTTP");
  }
  size_t next = t.events.mark();
  for (int i = 0; i <= c.tierCycles; ++i) {
    auto slept = t.events.waitFor("Sleeping", next, 30s, &next);
    if (!slept) return makeError(ErrorCode::kTimeout, "no Sleeping event within 30 s");
    std::this_thread::sleep_for(c.settle);
    TierFootprint held = footprint(*t.guard->instance);
    auto before = readRetransmits();
    HttpTiming r = timedGet(t.address(), c.guestPort, "/", 15s);
    auto after = readRetransmits();
    auto woken = t.events.waitFor("Woken", next, 15s, &next);
    if (r.status != 200) {
      all.failures.push_back(std::string(tier.name) + " wake " + std::to_string(i) + ": " + r.error);
      continue;
    }
    HttpTiming awake = timedGet(t.address(), c.guestPort, "/", 15s);
    if (i == 0) continue;  // warm-up
    TierWake w;
    w.requestMs = r.ms;
    w.awakeMs = awake.status == 200 ? awake.ms : 0;
    w.agentWakeMs = woken ? annotation(*woken, "wake_ms") : 0;
    w.sleepMs = annotation(*slept, tier.tier == agent::SleepTier::kLight ? "pause_ms" : "snapshot_ms");
    if (before.ok() && after.ok()) w.synRetrans = after->syn - before->syn;
    out.wakes.push_back(w);
    out.footprints.push_back(held);
    spdlog::info("bench: {} wake {}/{}: {:.1f} ms (agent {:.1f} ms), {} MiB held asleep, {} MiB charged", tier.name,
                 i, c.tierCycles, w.requestMs, w.agentWakeMs, held.heldBytes >> 20, held.cgroupBytes >> 20);
  }
  return okResult();
}

Result<void> density(const BenchConfig& c, agent::Agent& agent, const TierSetup& tier,
                     const standin::NomadCgroups& nomad, TierDensity& out, TierResults& all) {
  out.tasks = static_cast<unsigned>(c.densityTasks);
  out.memoryMib = c.densityMemoryMib;
  const uint64_t usedBefore = hostUsedBytes();
  std::vector<std::unique_ptr<BenchTask>> tasks;
  for (int i = 0; i < c.densityTasks; ++i) {
    auto task = startTask(c, agent, tier, nomad, "dens-" + std::to_string(i), c.densityMemoryMib);
    if (!task.ok()) return task.error();
    tasks.push_back(std::move(*task));
  }
  // Booted and serving first: a guest still booting after idle_timeout
  // would sleep half-booted, and its "wake" would measure the rest of its boot.
  std::vector<size_t> marks;
  for (auto& t : tasks) {
    if (!waitForHttp(t->address(), c.guestPort, 300s, "/")) {
      return makeError(ErrorCode::kTimeout, t->id + " never answered HTTP within 300 s");
    }
    marks.push_back(t->events.mark());
  }
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (!tasks[i]->events.waitFor("Sleeping", marks[i], 60s)) {
      return makeError(ErrorCode::kTimeout, tasks[i]->id + " never fell asleep within 60 s of serving");
    }
  }
  std::this_thread::sleep_for(2s);  // standbys up, nothing in flight
  for (auto& t : tasks) {
    TierFootprint f = footprint(*t->guard->instance);
    out.heldBytes += f.heldBytes;
    out.cgroupBytes += f.cgroupBytes;
    out.cgroupMeasured = f.cgroupMeasured;
  }
  const uint64_t usedAsleep = hostUsedBytes();
  out.hostUsedBytes = usedAsleep > usedBefore ? usedAsleep - usedBefore : 0;
  spdlog::info("bench: {} density: {} tasks asleep hold {} MiB ({} MiB charged), host {} MiB more in use",
               tier.name, tasks.size(), out.heldBytes >> 20, out.cgroupBytes >> 20, out.hostUsedBytes >> 20);
  std::vector<BenchTask*> order;
  for (auto& t : tasks) order.push_back(t.get());
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  for (BenchTask* t : order) {
    HttpTiming r = timedGet(t->address(), c.guestPort, "/", 15s);
    if (r.status == 200) {
      ++out.answered;
      out.wakeMs.push_back(r.ms);
    } else {
      all.failures.push_back(std::string(tier.name) + " density " + t->id + ": " + r.error);
    }
  }
  return okResult();
}

}  // namespace

Result<TierResults> runTierScenarios(const BenchConfig& c) {
  TierResults results;
  const standin::NomadCgroups nomad = standin::NomadCgroups::init();
  int index = 0;
  for (const TierSetup& tier : kTiers) {
    agent::AgentConfig config;
    config.stateDir = c.workDir / ("tier-" + std::to_string(index));
    config.subnet = "10.89.0.0/24";
    config.bpfPinRoot = "/sys/fs/bpf/s2z-bench-tier-" + std::to_string(::getpid()) + "-" + std::to_string(index);
    config.idlePollInterval = 50ms;
    config.standbyVmms = tier.standby ? static_cast<unsigned>(std::max(c.densityTasks, 1)) : 0;
    ++index;
    PinsGuard pins{config.bpfPinRoot};
    auto made = agent::makeAgent(config);
    if (!made.ok()) return made.error().wrap("make agent");
    std::unique_ptr<agent::Agent> agent = std::move(*made);
    TierResult out;
    out.name = tier.name;
    S2Z_TRY(wakeCycles(c, *agent, tier, nomad, out, results), std::string(tier.name) + " cycles");
    if (c.densityTasks > 0) {
      S2Z_TRY(density(c, *agent, tier, nomad, out.density, results), std::string(tier.name) + " density");
    }
    results.tiers.push_back(std::move(out));
  }
  return results;
}

}  // namespace s2z::bench
