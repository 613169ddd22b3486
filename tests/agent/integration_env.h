// Integration environment for the agent: a network namespace the calling
// thread enters (setns, so /sys and the bpffs stay visible) and every agent
// thread and QEMU started afterwards inherits, a cgroup v2 for the health
// checker, a unique bpf pin root and state dir. The destructor removes all of
// it, also when a test fails: QEMU processes started under the state dir,
// pins, the cgroup, the namespace.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/instance.h"
#include "common/unique_fd.h"

namespace s2z::agent::testing {

struct HttpResult {
  int status = 0;          // 0: no reply
  std::string body;
  double totalMs = 0;      // connect + request + reply
  double connectMs = 0;
  unsigned retransmits = 0;  // TCP_INFO total_retrans of the client socket (SYN included)
  std::string error;
};

// One GET (Connection: close) from the calling thread's netns.
HttpResult httpGet(const std::string& address, int port, const std::string& path,
                   std::chrono::milliseconds timeout);

// TCP retransmission counters of the calling thread's netns
// (/proc/thread-self/net/snmp Tcp RetransSegs, netstat TcpExt TCPSynRetrans).
struct TcpRetransCounters {
  uint64_t retransSegs = 0;
  uint64_t synRetrans = 0;
};
TcpRetransCounters tcpRetransCounters();

// Result of one health check made from inside a cgroup.
struct HealthCheck {
  int status = 0;
  double ms = 0;
};

class IntegrationEnv {
 public:
  explicit IntegrationEnv(const std::string& tag);
  ~IntegrationEnv();
  IntegrationEnv(const IntegrationEnv&) = delete;
  IntegrationEnv& operator=(const IntegrationEnv&) = delete;

  const std::filesystem::path& stateDir() const { return stateDir_; }
  const std::filesystem::path& pinRoot() const { return pinRoot_; }
  // Relative to the cgroup2 mount, as AgentConfig::healthCheckCgroup wants it.
  const std::string& cgroupRel() const { return cgroupRel_; }

  // Forks a child that joins the cgroup and runs `count` GET /healthz checks
  // against address:port, one after another; returns them in order.
  std::vector<HealthCheck> healthChecks(const std::string& address, int port, int count) const;

 private:
  void cleanup();

  std::string netns_;
  UniqueFd original_;
  bool entered_ = false;
  std::filesystem::path stateDir_, pinRoot_, cgroupDir_;
  std::string cgroupRel_;
};

std::filesystem::path guestDir();
bool guestAvailable();
// A task of the test guest (256 MiB, serves HTTP on 8080) named "web", its
// console in <stateDir>/<taskId>.console (created); no scale to zero.
InstanceSpec testGuestSpec(const std::filesystem::path& stateDir, const std::string& taskId);
// True while /proc/<pid> exists with the given start time (field 22).
bool processAlive(pid_t pid, uint64_t startTime);

}  // namespace s2z::agent::testing
