// Scenarios driven through the real agent (makeAgent): held-tap sleep/wake
// cycles with scale_to_zero on, and cold boots.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "bench/bench_config.h"
#include "bench/process_memory.h"
#include "bench/task_logs.h"
#include "common/result.h"

namespace s2z::bench {

struct WakeSample {
  double requestMs = 0;        // SYN sent -> full response (client in the netns)
  double agentWakeMs = 0;      // the agent's "Woken" wake_ms (event -> restored)
  double sleepMs = 0;          // "Sleeping" snapshot_ms (pause -> VMM exited), light: pause_ms
  double snapshotBytes = 0;    // "Sleeping" snapshot_bytes
  uint64_t retransSegs = 0;    // TcpRetransSegs during the request
  uint64_t synRetrans = 0;     // TCPSynRetrans during the request
  // Guest agent only ("Woken" annotations): the guest clock's error once
  // corrected, and restored -> corrected.
  double clockErrorMs = 0;
  double clockMs = 0;
};

struct ColdSample {
  double ms = 0;               // start() called -> full response
  uint64_t synRetrans = 0;
  int refused = 0;             // connects refused (guest up, server not yet) and retried
};

struct AgentResults {
  std::vector<WakeSample> wakes;
  std::vector<ColdSample> colds;
  // The same with the guest agent running busybox httpd from the test root
  // filesystem (guest/agent); empty when the agent guest is missing.
  std::vector<WakeSample> agentWakes;       // deep sleep, restored into a standby
  std::vector<WakeSample> agentLightWakes;  // light sleep (the default tier): a resume
  std::vector<ColdSample> agentColds;
  uint64_t guestAgentRssKiB = 0;      // VmRSS of the guest's PID 1, read by the workload
  uint64_t agentInitramfsBytes = 0;
  uint64_t testInitramfsBytes = 0;
  std::string agentProblem;           // why the agent rows are missing, if they are
  std::vector<std::string> failures;  // requests that did not get a 200, with why
  ProcessMemory logHolder;            // the held-tap task's log FIFO holder
};

// Starts the agent with a state dir under config.workDir and BPF pins under
// /sys/fs/bpf/<pins>, runs one warm-up and config.cycles measured wakes, then
// config.coldRuns cold boots; removes its instances and pins.
// Fails when the agent or an instance cannot start, or scale-to-zero is off.
Result<AgentResults> runAgentScenarios(const BenchConfig& config);

// What a scenario boots: the instance spec for a task id, scale-to-zero on or
// off, with the task's log FIFOs.
using SpecMaker = std::function<agent::InstanceSpec(const BenchConfig&, const std::string& taskId, bool scaleToZero,
                                                    const TaskLogs&)>;

// The test guest (its init serves HTTP on guestPort), deep sleep: the
// held-tap rows' task.
agent::InstanceSpec guestSpec(const BenchConfig& c, const std::string& taskId, bool scaleToZero,
                              const TaskLogs& logs);

// The guest-agent rows' task: the agent guest, the Debian test root and
// busybox httpd serving the agent's VmRSS.
agent::InstanceSpec agentGuestSpec(const BenchConfig& c, const std::string& taskId, bool scaleToZero,
                                   const TaskLogs& logs);

// The same in light sleep, the tier a task gets by default.
agent::InstanceSpec agentGuestLightSpec(const BenchConfig& c, const std::string& taskId,
                                        bool scaleToZero, const TaskLogs& logs);

// Starts the task `spec` makes with scale-to-zero on, then one warm-up and
// c.cycles measured sleep -> request -> wake rounds into `wakes`; failed
// requests go to out.failures. Destroys the task at the end.
Result<void> wakeCycles(const BenchConfig& c, agent::Agent& agent, const SpecMaker& spec, const std::string& taskId,
                        std::vector<WakeSample>& wakes, AgentResults& out);

}  // namespace s2z::bench
