// The stand-in host of the CNI tests, inside the IntegrationEnv netns the
// test thread entered: a "node address" (Nomad's
// PortMapping.host_ip; local, so nothing routes anywhere) and helpers that
// act in an alloc's netns.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "common/result.h"
#include "tests/agent/integration_env.h"
#include "common/unique_fd.h"

namespace s2z::cni_test {

// The node address the tests map host ports on (TEST-NET-2, on the
// stand-in host netns's loopback).
inline constexpr const char* kNodeAddress = "198.51.100.10";

// The health-check mark of the CNI tests' agents. Not 0x2000: portmap
// masquerades packets with that bit (CNI-HOSTPORT-MASQ).
inline constexpr uint32_t kHealthMark = 0x40000;

// The agent config of the CNI tests: env's state dir, BPF pins and health
// cgroup (its checks marked kHealthMark), host subnet 10.89.0.0/24, idle
// polled every 50 ms.
agent::AgentConfig cniAgentConfig(const agent::testing::IntegrationEnv& env);

// The test guest's /counter reply as a number; -1 unless a 200.
inline int guestCounter(int status, const std::string& body) { return status == 200 ? std::stoi(body) : -1; }

// Adds kNodeAddress/32 to lo in the calling thread's netns.
Result<void> addNodeAddress();

// From inside netns `path`: sends a few UDP datagrams that make the alloc
// broadcast (to the subnet broadcast, and to unused bridge addresses, which
// needs broadcast ARP first) — traffic that floods every bridge port.
Result<void> sendBroadcastNoise(const std::string& netnsPath, int rounds);

// A TCP server in netns `path` on port that answers every connection with
// `reply` and closes; runs until destroyed.
class TinyServer {
 public:
  TinyServer(const std::string& netnsPath, uint16_t port, std::string reply);
  ~TinyServer();
  bool listening() const { return static_cast<bool>(listen_); }

 private:
  UniqueFd listen_;  // created inside the netns: it stays bound there
  UniqueFd stop_;    // eventfd that ends the serving thread
  std::thread thread_;
};

// connect + read until EOF from the calling thread's netns; "" on failure.
std::string tcpFetch(const std::string& address, uint16_t port, std::chrono::milliseconds timeout);

}  // namespace s2z::cni_test
