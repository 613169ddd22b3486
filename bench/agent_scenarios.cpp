#include "bench/agent_scenarios.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cmath>
#include <thread>

#include "agent/agent.h"
#include "bench/bench_guards.h"
#include "bench/event_log.h"
#include "bench/http_probe.h"
#include "bench/task_logs.h"
#include "bpf/kernel_scale_to_zero.h"

namespace s2z::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double annotation(const agent::InstanceEvent& e, const std::string& key) {
  auto it = e.annotations.find(key);
  return it == e.annotations.end() ? 0.0 : std::atof(it->second.c_str());
}

// The workload of the agent rows: Debian's busybox httpd from the test root
// filesystem (a small C server, like the test guest's, so the rows compare
// the guests and not the servers), serving a page that holds the guest
// agent's resident memory (PID 1's VmRSS) as it was when the workload began.
constexpr const char* kAgentServer =
    "mkdir -p /tmp/www && grep VmRSS /proc/1/status > /tmp/www/index.html && "
    "cp /tmp/www/index.html /tmp/www/healthz && exec busybox httpd -f -p 0.0.0.0:8080 -h /tmp/www";

}  // namespace

agent::InstanceSpec guestSpec(const BenchConfig& c, const std::string& taskId, bool scaleToZero,
                              const TaskLogs& logs) {
  agent::InstanceSpec s;
  s.taskId = taskId;
  s.name = taskId;
  s.hypervisor = vmm::Hypervisor::kQemu;
  s.binary = c.qemu;
  s.accelerator = vmm::detectAccelerator().accelerator;
  s.kernel = c.guestDir / "vmlinuz";
  s.initrd = c.guestDir / "initrd.img";
  s.cmdline = c.guestCmdline;
  s.stdoutPath = logs.stdoutFifo;
  s.stderrPath = logs.stderrFifo;
  s.vcpus = 1;
  s.memoryMib = 256;
  s.scaleToZero = scaleToZero;
  s.idleTimeout = c.idleTimeout;
  // The held-tap rows are deep sleeps with a standby (as every sleep was
  // before the tiers), comparable run to run; the tier rows vary this.
  s.sleepTier = agent::SleepTier::kDeep;
  return s;
}

agent::InstanceSpec agentGuestSpec(const BenchConfig& c, const std::string& taskId,
                                   bool scaleToZero, const TaskLogs& logs) {
  agent::InstanceSpec s = guestSpec(c, taskId, scaleToZero, logs);
  s.kernel = c.agentGuestDir / "vmlinuz";
  s.initrd = c.agentGuestDir / "initrd.img";
  s.rootfs = c.rootfs;
  s.workload = agent::WorkloadSpec{};
  s.workload->argv = {"/bin/sh", "-c", kAgentServer};
  s.workload->env = {"PATH=/usr/local/bin:/usr/bin:/bin"};
  return s;
}

agent::InstanceSpec agentGuestLightSpec(const BenchConfig& c, const std::string& taskId,
                                        bool scaleToZero, const TaskLogs& logs) {
  agent::InstanceSpec s = agentGuestSpec(c, taskId, scaleToZero, logs);
  s.sleepTier = agent::SleepTier::kLight;
  return s;
}

// One warm-up and c.cycles measured sleep -> request -> wake rounds of the
// instance `spec` makes, into `wakes`.
Result<void> wakeCycles(const BenchConfig& c, agent::Agent& agent, const SpecMaker& spec,
                        const std::string& taskId, std::vector<WakeSample>& wakes,
                        AgentResults& out) {
  EventLog log;
  auto logs = openTaskLogs(c.workDir, taskId);
  if (!logs.ok()) return logs.error().wrap("task logs");
  agent::InstanceSpec instance = spec(c, taskId, true, *logs);
  // What the "Sleeping" event says the sleep took: a pause or a snapshot.
  const char* sleepKey = instance.sleepTier == agent::SleepTier::kLight ? "pause_ms" : "snapshot_ms";
  auto started = agent.start(std::move(instance), log.sink());
  if (!started.ok()) return started.error().wrap("start scale-to-zero instance");
  InstanceGuard guard{agent, *started, taskId};
  const std::string addr = guard.instance->record().network.address;
  if (auto mem = readProcessMemory(guard.instance->record().logHolder.pid); mem.ok()) {
    out.logHolder = *mem;
  } else {
    out.failures.push_back("log FIFO holder: " + mem.error().describe());
  }
  spdlog::info("bench: held-tap instance at {}, waiting for the guest", addr);
  // "/": what every round requests (an image serves no /healthz).
  if (!waitForHttp(addr, c.guestPort, 90s, "/")) {
    return makeError(ErrorCode::kTimeout, "guest at " + addr + " never answered HTTP; its stderr: " +
                                              logs->reader->stderrText());
  }

  size_t next = log.mark();
  for (int i = 0; i <= c.cycles; ++i) {
    auto slept = log.waitFor("Sleeping", next, 30s, &next);
    if (!slept)
      return makeError(ErrorCode::kTimeout,
                       "no Sleeping event within 30 s (state " +
                           std::string(agent::instanceStateName(guard.instance->state())) + ")");
    std::this_thread::sleep_for(c.settle);
    auto before = readRetransmits();
    HttpTiming t = timedGet(addr, c.guestPort, "/", 15s);
    auto after = readRetransmits();
    auto woken = log.waitFor("Woken", next, 15s, &next);
    if (t.status != 200) {
      out.failures.push_back("wake " + std::to_string(i) + ": " + t.error);
      continue;
    }
    if (auto at = t.body.find("VmRSS:"); at != std::string::npos) {
      out.guestAgentRssKiB = std::strtoull(t.body.c_str() + at + 6, nullptr, 10);
    }
    if (i == 0) continue;  // warm-up: first restore of this snapshot file
    WakeSample s;
    s.requestMs = t.ms;
    s.agentWakeMs = woken ? annotation(*woken, "wake_ms") : 0;
    s.sleepMs = annotation(*slept, sleepKey);
    if (woken) {
      s.clockErrorMs = std::fabs(annotation(*woken, "clock_error_ms"));
      s.clockMs = annotation(*woken, "clock_ms");
    }
    s.snapshotBytes = annotation(*slept, "snapshot_bytes");
    if (before.ok() && after.ok()) {
      s.retransSegs = after->segments - before->segments;
      s.synRetrans = after->syn - before->syn;
    }
    wakes.push_back(s);
    spdlog::info("bench: {} wake {}/{}: {:.1f} ms (agent {:.1f} ms), sleep {:.1f} ms, SYN retrans {}",
                 taskId, i, c.cycles, s.requestMs, s.agentWakeMs, s.sleepMs, s.synRetrans);
  }
  return okResult();
}

namespace {

// A cold boot: the request goes out as soon as start() returns (tap, route
// and neighbour exist) and relies on TCP's own retransmits while the guest
// boots, as a client of a not-yet-booted VM would.
Result<void> coldBoot(const BenchConfig& c, agent::Agent& agent, const SpecMaker& spec, const std::string& taskId,
                      std::vector<ColdSample>& colds, AgentResults& out) {
  EventLog log;
  auto logs = openTaskLogs(c.workDir, taskId);
  if (!logs.ok()) return logs.error().wrap("task logs");
  auto before = readRetransmits();
  auto t0 = Clock::now();
  auto started = agent.start(spec(c, taskId, false, *logs), log.sink());
  if (!started.ok()) return started.error().wrap("start cold instance");
  InstanceGuard guard{agent, *started, taskId};
  // Once the guest's NIC is up but before its server listens, the SYN
  // gets a RST: retry like a client behind a load balancer would.
  const auto deadline = t0 + 60s;
  HttpTiming t;
  int refused = 0;
  const std::string addr = guard.instance->record().network.address;
  while (Clock::now() < deadline) {
    t = timedGet(addr, c.guestPort, "/",
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (t.errnum != ECONNREFUSED) break;
    ++refused;
    std::this_thread::sleep_for(50ms);
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  auto after = readRetransmits();
  if (t.status != 200) {
    out.failures.push_back("cold boot " + taskId + ": " + t.error);
    return okResult();
  }
  ColdSample s{ms, before.ok() && after.ok() ? after->syn - before->syn : 0, refused};
  colds.push_back(s);
  spdlog::info("bench: cold boot {}: {:.0f} ms, SYN retrans {}, refused {}", taskId, ms, s.synRetrans, refused);
  return okResult();
}

// c.coldRuns cold boots of the test guest and, with `agentGuest`, as many of
// the agent guest, alternating: the agent's target is "≤ agent-less + 500 ms",
// and boots under TCG drift by more than that over a run (3235–4247 ms within
// one run's three), so both rows must see the same drift.
Result<void> coldBoots(const BenchConfig& c, agent::Agent& agent, bool agentGuest, AgentResults& out) {
  for (int i = 0; i < c.coldRuns; ++i) {
    S2Z_TRY(coldBoot(c, agent, guestSpec, "bench-cold-" + std::to_string(i), out.colds, out), "cold boot");
    if (agentGuest)
      S2Z_TRY(coldBoot(c, agent, agentGuestSpec, "bench-agent-cold-" + std::to_string(i), out.agentColds, out),
              "agent cold boot");
  }
  return okResult();
}

}  // namespace

Result<AgentResults> runAgentScenarios(const BenchConfig& c) {
  agent::AgentConfig config;
  config.stateDir = c.workDir / "agent";
  config.subnet = "10.89.0.0/24";
  config.bpfPinRoot = "/sys/fs/bpf/s2z-bench-" + std::to_string(::getpid());
  config.idlePollInterval = std::chrono::milliseconds(50);
  config.standbyVmms = 1;
  PinsGuard pins{config.bpfPinRoot};
  auto made = agent::makeAgent(config);
  if (!made.ok()) return made.error().wrap("make agent");
  std::unique_ptr<agent::Agent> agent = std::move(*made);
  if (auto st = agent->status(); !st.scaleToZeroReady)
    return makeError(ErrorCode::kFailedPrecondition, "scale-to-zero not ready: " + st.problem);

  AgentResults out;
  S2Z_TRY(wakeCycles(c, *agent, guestSpec, "bench-held", out.wakes, out), "held-tap cycles");
  std::error_code ec;
  out.testInitramfsBytes = std::filesystem::file_size(c.guestDir / "initrd.img", ec);
  out.agentInitramfsBytes = std::filesystem::file_size(c.agentGuestDir / "initrd.img", ec);
  const bool agentGuest = !c.agentGuestDir.empty() && std::filesystem::exists(c.agentGuestDir / "vmlinuz") &&
                          !c.rootfs.empty() && std::filesystem::exists(c.rootfs);
  if (!agentGuest) {
    out.agentProblem = "agent guest or test root filesystem not built (ninja agent_guest, "
                       "scripts/build-rootfs.sh)";
    S2Z_TRY(coldBoots(c, *agent, false, out), "cold boots");
    return out;
  }
  S2Z_TRY(wakeCycles(c, *agent, agentGuestSpec, "bench-agent", out.agentWakes, out),
          "agent held-tap cycles");
  S2Z_TRY(wakeCycles(c, *agent, agentGuestLightSpec, "bench-agent-light", out.agentLightWakes, out),
          "agent light-sleep cycles");
  S2Z_TRY(coldBoots(c, *agent, true, out), "cold boots");
  return out;
}

}  // namespace s2z::bench
