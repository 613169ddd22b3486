// Shared pieces of the reliability suite (issue 13): a guest workload whose
// every response is checkable (64 KiB, a CRC-32 over the body, a counter that
// lives only in the guest's memory), the task's record as the plugin keeps it
// (instance.json: state, VMM pid, snapshot dir), and the plugin loaded on a
// subnet and tap ifindex of its own (see ReliabilityEnv).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "standin/nomad_client.h"
#include "tests/integration/test_env.h"

namespace s2z::reliability {

// Size of every response body of kCheckedServer.
constexpr size_t kBodyBytes = 64 * 1024;

// python3 (Debian test root) on port 8080: per connection one request read,
// the in-memory counter n incremented, and a 64 KiB body sent:
// "%010d %08x\n" (n, CRC-32 of the rest) then 65516 bytes seeded by n.
extern const char* const kCheckedServer;

struct CheckedReply {
  bool ok = false;
  long counter = -1;   // n of the guest, when the header line parsed
  std::string why;     // what was wrong, when !ok
};

// Status 200, exactly kBodyBytes, a well-formed first line, CRC-32 matching.
CheckedReply checkReply(const integration::HttpReply& reply);

uint32_t crc32(const std::string& data, size_t offset);

// A TestEnv whose plugin uses a subnet other than the integration tests'
// (10.89.200-249) and whose first tap gets an ifindex other than 2: every
// plugin on the host shares the BPF maps pinned under /sys/fs/bpf/s2z-kata,
// keyed by tap ifindex and VM address, and other engineers' integration
// tests run on this machine at the same time. Filler veth pairs occupy the
// low indexes; they are part of every inventory baseline.
class ReliabilityEnv {
 public:
  ReliabilityEnv();
  integration::TestEnv& env() { return env_; }
  const integration::TestEnv& env() const { return env_; }
  const std::string& subnetPrefix() const { return prefix_; }
  // The plugin through the stand-in (long-lived launch only), fingerprinted.
  std::unique_ptr<standin::NomadClient> loadPlugin() const;
  // The same with the failpoint build (s2z-kata-failpoints), failpoint
  // armed from the start (empty: none; NomadClient::setPluginEnv re-arms).
  std::unique_ptr<standin::NomadClient> loadFailpointPlugin(const std::string& failpoint) const;

 private:
  std::unique_ptr<standin::NomadClient> load(standin::ClientOptions opts) const;

  integration::TestEnv env_;
  std::string prefix_;  // "10.89.N."
};

// agent::InstanceState as instance.json stores it. These tests read the
// file as an operator would, without the agent's headers.
inline constexpr int kStateRunning = 2;
inline constexpr int kStateSnapshotting = 3;
inline constexpr int kStateSleeping = 4;
inline constexpr int kStateWaking = 5;

// The one task's instance.json under state_dir/tasks/*/.
struct TaskRecord {
  int state = 0;       // agent::InstanceState: 2 running, 3 snapshotting, 4 sleeping, 5 waking
  pid_t vmmPid = 0;
  bool standby = false;
  std::filesystem::path runDir;
  std::filesystem::path snapshotDir;
};
std::optional<TaskRecord> readTaskRecord(const integration::TestEnv& env);

// QEMU VMs in the env's netns (comm "qemu-system-x86", a QMP socket: not
// the fingerprint's `--version` probe).
std::vector<pid_t> qemuPids(const integration::TestEnv& env);
bool isQemu(pid_t pid);

// The VMM of the task: the record's pid when it is a live QEMU.
std::optional<pid_t> liveVmmPid(const integration::TestEnv& env);

// Starts kCheckedServer as a scale-to-zero task and waits for its first answer.
// `moreScaleToZero`: further fields of its scale_to_zero block ("sleep: ...").
standin::StartedTask startCheckedServer(standin::NomadClient& c, const integration::TestEnv& env,
                                        const std::string& idleTimeout, const std::string& moreScaleToZero = "");

// Events of the allocation whose message starts with `prefix` (case-sensitive).
std::vector<standin::TaskEventRecord> eventsStarting(const standin::NomadClient& c,
                                                     const std::string& allocId,
                                                     const std::string& prefix);
std::string describeEvents(const standin::NomadClient& c, const std::string& allocId);

double msSince(std::chrono::steady_clock::time_point t0);

}  // namespace s2z::reliability
