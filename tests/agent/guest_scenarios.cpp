#include "tests/agent/guest_scenarios.h"

namespace s2z::agent::testing {

using namespace std::chrono_literals;

AgentConfig guestAgentConfig(const IntegrationEnv& env, unsigned standbyVmms) {
  AgentConfig c;
  c.stateDir = env.stateDir();
  c.subnet = "10.89.0.0/24";
  c.healthCheckMark = kHealthMark;
  c.healthCheckCgroup = env.cgroupRel();
  c.idlePollInterval = 50ms;
  c.bpfPinRoot = env.pinRoot();
  c.standbyVmms = standbyVmms;
  return c;
}

InstanceSpec testGuestSpec(const IntegrationEnv& env, const std::string& taskId, SleepTier tier) {
  // A plain file stands in for the stdout FIFO (task_output_test covers the
  // FIFO reader); like Nomad's FIFO it exists before the start.
  InstanceSpec s = testGuestSpec(env.stateDir(), taskId);
  s.scaleToZero = true;
  s.idleTimeout = kGuestIdle;
  s.sleepTier = tier;
  return s;
}

bool waitGuestHttp(const std::string& address, std::chrono::milliseconds timeout) {
  return waitUntil([&] { return httpGet(address, kGuestPort, "/", 1s).status == 200; }, timeout);
}

int counterOf(const HttpResult& r) { return r.status == 200 ? std::stoi(r.body) : -1; }

size_t countEvents(const EventLog& log, const std::string& prefix) { return log.find(prefix).size(); }

bool waitEvents(const EventLog& log, const std::string& prefix, size_t n) {
  return waitUntil([&] { return countEvents(log, prefix) >= n; }, kGuestIdle + 15s);
}

std::string annotation(const EventLog& log, const std::string& prefix, const std::string& key) {
  auto events = log.find(prefix);
  if (events.empty() || !events.back().annotations.count(key)) return "?";
  return events.back().annotations.at(key);
}

}  // namespace s2z::agent::testing
