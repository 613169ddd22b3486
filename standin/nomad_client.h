// A stand-in for the Nomad client's side of the task-driver protocol: the
// plugin loader (probe, validation and long-lived launches), SetConfig with
// the agent's plugin config, the long-lived Fingerprint/TaskEvents streams,
// and the task runner's RPC sequence (docs/nomad-plugin-protocol.md §1, §3).
// Everything observed is recorded for tests. Plain types only: no generated
// protobuf headers leak from here.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/result.h"
#include "standin/exec_call.h"
#include "standin/plugin_connection.h"
#include "standin/plugin_process.h"
#include "standin/records.h"
#include "standin/task_file.h"

namespace s2z::standin {

class PluginInstance;
class Recorder;
class LogCollector;

struct ClientOptions {
  LaunchOptions launch;            // binary, args, extra env, netns
  YAML::Node pluginConfig;         // the agent's plugin "x" { config {} } body; null = none
  bool rawPluginConfig = false;    // send pluginConfig without schema checks
  std::string dataDir;             // alloc dirs; default a new /tmp/s2z-standin-<pid>-XXXXXX
  uint32_t clientMinPort = 14000;  // nomad_config.driver
  uint32_t clientMaxPort = 14512;
  std::chrono::milliseconds statsInterval{1000};
  bool skipProbeAndValidation = false;  // only the long-lived launch (faster tests)
  // Send nomad_config.driver.Topology as Nomad >= 1.7 does (false: a 1.6 client).
  bool sendTopology = true;
  // Nomad starts the log collector's FIFO readers before StartTask. A delay
  // starts them this long after StartTask was sent instead (a slow logmon);
  // false: never (a logmon that failed), so the FIFOs have no reader at all.
  std::chrono::milliseconds logCollectorDelay{0};
  bool collectLogs = true;
};

// Timings and outcomes of the loader's launches.
struct LoaderReport {
  KillReport probeKill;
  bool validationRan = false;
  KillReport validationKill;
};

class NomadClient {
 public:
  ~NomadClient();  // stops background calls and kills the plugin (VMs are left alone)
  NomadClient(const NomadClient&) = delete;
  NomadClient& operator=(const NomadClient&) = delete;

  // Runs the plugin loader: probe launch (PluginInfo checked: type DRIVER,
  // api version semver-equal to 0.1.0, plugin_version parses, name set;
  // ConfigSchema), validation launch (SetConfig twice, no nomad_config) when
  // the schema is non-nil, then the long-lived launch (SetConfig with
  // nomad_config, Fingerprint and TaskEvents streams). Fails with the first
  // error, naming the stage ("probe: PluginInfo: ...").
  static Result<std::unique_ptr<NomadClient>> loadPlugin(ClientOptions options);

  const PluginInfoSummary& pluginInfo() const { return info_; }
  const LoaderReport& loaderReport() const { return loader_; }
  const std::string& dataDir() const { return options_.dataDir; }
  // The current long-lived plugin process and connection.
  PluginProcess& process();
  PluginConnection& connection();

  Result<Capabilities> capabilities();

  // Task runner: TaskConfigSchema, Capabilities, encode the config (errors
  // here are "Failed Validation": no StartTask is sent), StartTask, then
  // WaitTask and a TaskStats stream in the background.
  Result<StartedTask> startTask(const TaskFile& task);
  // The node's compute in MHz, as this client computes PercentTicks from it.
  static double nodeComputeMhz();
  // Synchronous WaitTask with a deadline; kTimeout if the task still runs.
  Result<ExitResult> waitTask(const std::string& taskId, std::chrono::milliseconds timeout);
  // The result of the background WaitTask, if it returned.
  std::optional<ExitResult> backgroundExit(const std::string& taskId) const;
  Result<void> stopTask(const std::string& taskId, std::chrono::milliseconds timeout,
                        const std::string& signal = "");
  // Always force=true in Nomad; the task's records are kept for inspection.
  Result<void> destroyTask(const std::string& taskId, bool force = true);
  // RecoverTask with task_id empty and the stored handle, as the client does;
  // then WaitTask and TaskStats in the background again.
  Result<void> recoverTask(const StartedTask& task);
  Result<void> signalTask(const std::string& taskId, const std::string& signal);
  // A script check's run (standin/exec_call.h).
  Result<ExecTaskOutcome> execTask(const std::string& taskId, const std::vector<std::string>& command,
                                   std::chrono::milliseconds timeout);
  // `nomad alloc exec [-t]` (standin/exec_call.h).
  Result<std::unique_ptr<ExecStreamCall>> execStreaming(const std::string& taskId,
                                                        const std::vector<std::string>& command, bool tty);
  // A template's data changed (Consul, Vault): writes the file again as the
  // client's template runner does, then applies its change_mode (signal:
  // SignalTask with change_signal; noop: nothing; restart: kUnimplemented).
  Result<void> rerenderTemplate(const std::string& taskId, const std::string& destination,
                                const std::string& data);

  // go-plugin kill of the long-lived plugin (Controller/Shutdown, 2 s, SIGKILL).
  KillReport shutdownPlugin();
  // SIGKILL the long-lived plugin (a crash).
  void crashPlugin();
  // Re-dispense after a crash/shutdown: new process, SetConfig with
  // nomad_config, Fingerprint and TaskEvents streams. No RecoverTask.
  Result<void> relaunchPlugin();
  // Sets (value non-empty) or removes an environment variable of the next
  // launches: a test plugin's failpoint (common/failpoint.h).
  void setPluginEnv(const std::string& name, const std::string& value);

  // Thread-safe snapshots of what was observed (across plugin restarts).
  std::vector<FingerprintRecord> fingerprints() const;
  std::vector<TaskEventRecord> events() const;
  std::vector<StatsSample> statsSamples(const std::string& taskId) const;
  int fingerprintStreamEnds() const;
  // Output discipline of all plugin processes so far, the current one included.
  PluginOutputSummary outputSummary() const;
  // Text the driver wrote to the task's stdout/stderr FIFOs.
  std::string taskStdout(const std::string& taskId) const;
  std::string taskStderr(const std::string& taskId) const;
  // True once the stdout reader saw EOF (the driver's last writer closed):
  // like logmon it never reads that FIFO again in this task run.
  bool taskStdoutClosed(const std::string& taskId) const;

  // Waits until `pred` holds, re-checking after every new record (and every
  // 100 ms). Returns false on timeout.
  bool waitUntil(std::chrono::milliseconds timeout, const std::function<bool()>& pred);
  bool waitForFingerprint(std::chrono::milliseconds timeout);
  bool waitForStats(const std::string& taskId, size_t count, std::chrono::milliseconds timeout);

 private:
  struct TaskRecord;
  explicit NomadClient(ClientOptions options);
  Result<void> probe();
  Result<void> validate();
  Result<void> startLongLived();
  Result<void> setConfig(PluginInstance& inst, bool withNomadConfig);
  void startTaskBackground(const std::string& taskId);
  // Adds a finished instance's output counts to retired_.
  void retire(PluginInstance& inst);

  ClientOptions options_;
  PluginInfoSummary info_;
  LoaderReport loader_;
  bool hasConfigSchema_ = false;
  std::string configSchema_;     // serialized hclspec.Spec (empty if nil)
  std::string pluginConfigMsgpack_;
  std::unique_ptr<Recorder> recorder_;
  std::unique_ptr<PluginInstance> instance_;
  PluginOutputSummary retired_;

  mutable std::mutex tasksMu_;  // guards tasks_
  std::map<std::string, std::shared_ptr<TaskRecord>> tasks_;
};

}  // namespace s2z::standin
