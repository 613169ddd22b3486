// What the agent's real-QEMU tests share: the agent configuration inside an
// IntegrationEnv, the test guest's spec (its web server on 8080 counts
// requests at /counter, so a woken guest that kept its memory answers with
// the next number), and waits on the events a task emits.
#pragma once

#include <chrono>
#include <string>

#include "agent/agent.h"
#include "tests/agent/agent_test_support.h"
#include "tests/agent/integration_env.h"

namespace s2z::agent::testing {

inline constexpr int kGuestPort = 8080;
inline constexpr uint32_t kHealthMark = 0x5a000;
inline constexpr std::chrono::seconds kGuestIdle{3};

// Health filtering on, a 50 ms idle poll, standbyVmms standby VMMs.
AgentConfig guestAgentConfig(const IntegrationEnv& env, unsigned standbyVmms);
// The test guest, scale to zero after kGuestIdle, sleeping in `tier`.
InstanceSpec testGuestSpec(const IntegrationEnv& env, const std::string& taskId, SleepTier tier);

// Polls GET / until 200 (requests count as activity, so it stays awake).
bool waitGuestHttp(const std::string& address, std::chrono::milliseconds timeout);
int counterOf(const HttpResult& r);  // -1 unless a 200
size_t countEvents(const EventLog& log, const std::string& prefix);
// Waits for the n-th event starting with `prefix` (idle time + 15 s).
bool waitEvents(const EventLog& log, const std::string& prefix, size_t n);
// The newest such event's annotation, "?" when absent.
std::string annotation(const EventLog& log, const std::string& prefix, const std::string& key);

}  // namespace s2z::agent::testing
