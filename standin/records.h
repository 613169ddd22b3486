// Plain records of what the stand-in observed from a plugin (fingerprints,
// task events, stats samples, exits), free of generated protobuf types so
// tests can use them without the proto headers.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace s2z::standin {

struct PluginInfoSummary {
  std::string type;                      // "DRIVER", "DEVICE", ...
  std::vector<std::string> apiVersions;
  std::string chosenApiVersion;          // the plugin's own string, echoed in SetConfig
  std::string version;
  std::string name;
};

struct Capabilities {
  bool sendSignals = false;
  bool exec = false;
  std::string fsIsolation;               // NONE, CHROOT, IMAGE, UNVEIL
  std::vector<std::string> networkIsolationModes;  // HOST, GROUP, TASK, NONE
  bool mustCreateNetwork = false;
  std::string mountConfigs;              // ANY_MOUNTS, NO_MOUNTS
  bool remoteTasks = false;
  bool disableLogCollection = false;
  bool dynamicWorkloadUsers = false;
};

struct FingerprintRecord {
  enum class Health { kUndetected = 0, kUnhealthy = 1, kHealthy = 2 };
  Health health = Health::kUndetected;
  std::string description;
  // Rendered as the client renders node attributes (bool true/false, numbers
  // in Go %v form, unit appended).
  std::map<std::string, std::string> attributes;
  std::string err;
  std::chrono::steady_clock::time_point receivedAt;
  bool detected() const { return health != Health::kUndetected; }
  bool healthy() const { return health == Health::kHealthy; }
};

struct TaskEventRecord {
  std::string taskId;
  std::string allocId;
  std::string taskName;
  std::string message;
  std::map<std::string, std::string> annotations;
  bool hasTimestamp = false;
  int64_t timestampUnixNanos = 0;
  std::chrono::steady_clock::time_point receivedAt;
};

struct StatsSample {
  std::string taskId;
  bool hasTimestamp = false;   // the client drops samples without one
  bool hasAggUsage = false;    // the client dereferences it unconditionally
  int64_t timestampUnixNanos = 0;
  double cpuPercent = 0;
  double cpuTotalTicks = 0;
  double cpuUserMode = 0;
  double cpuSystemMode = 0;
  uint64_t cpuThrottledPeriods = 0;  // a hard CPU limit's: periods held back, and for how long (ns)
  uint64_t cpuThrottledTime = 0;
  uint64_t memoryRss = 0;
  uint64_t memoryUsage = 0;
  std::vector<std::string> cpuMeasured;
  std::vector<std::string> memoryMeasured;
  std::chrono::steady_clock::time_point receivedAt;
};

struct ExitResult {
  bool hasResult = false;  // WaitTaskResponse.result set (required for 1.6–1.10)
  int exitCode = 0;
  int signal = 0;
  bool oomKilled = false;
  std::string err;          // WaitTaskResponse.err
};

// stdout/stderr discipline over every plugin process a NomadClient launched
// (probe, validation, each long-lived one).
struct PluginOutputSummary {
  int processes = 0;
  int logViolations = 0;     // hclog JSON lines breaking the contract
  int nonJsonLines = 0;      // stderr lines that are not JSON at all
  int extraStdoutLines = 0;  // stdout lines after the handshake (Nomad discards them)
  std::vector<std::string> samples;  // the first offending lines
};

// What StartTask returned, plus where the stand-in put the task's files.
struct StartedTask {
  std::string id;
  std::string allocId;
  std::string name;
  std::string handle;          // serialized TaskHandle, as the client stores it
  int handleVersion = 0;
  bool handleConfigMatches = false;  // handle.config.id == id
  std::string driverState;     // handle.driver_state bytes
  bool hasNetworkOverride = false;
  std::string networkAddr;
  std::map<std::string, int> portMap;
  bool autoAdvertise = false;
  std::string allocDir;
  std::string taskDir;
  std::string stdoutPath;      // FIFO given to the driver
  std::string stderrPath;
  std::string reservedCores;   // linux_resources.cpuset_cpus: released after the stop hooks
};

}  // namespace s2z::standin
