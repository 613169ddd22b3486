// Builds the TaskConfig the Nomad client sends in StartTask from a TaskFile
// (docs/nomad-plugin-protocol.md §3.4): ids, NOMAD_* environment, resources,
// port mappings, alloc dir layout and the log FIFOs.
#pragma once

#include <string>

#include "common/result.h"
#include "hashicorp/nomad/plugins/drivers/proto/driver.pb.h"
#include "hashicorp/nomad/plugins/shared/hclspec/hcl_spec.pb.h"
#include "standin/nomad_cgroups.h"
#include "standin/task_file.h"

namespace s2z::standin {

namespace drivers = hashicorp::nomad::plugins::drivers::proto;

// A random RFC 4122 version-4 UUID, as Nomad uses for alloc and node ids.
std::string randomUuid();
// "<alloc_id>/<task>/<8 hex>": a new id for every (re)start, as the client does.
std::string newTaskId(const std::string& allocId, const std::string& taskName);

struct NodeInfo {
  std::string nodeId;
  std::string nodeName;
  double totalComputeMhz = 0;  // for LinuxResources.PercentTicks
  // Nomad's cgroup tree on this host: what each task's
  // LinuxResources.cpuset_cgroup names, and the cgroups made for it.
  NomadCgroups cgroups = NomadCgroups::off();
  static NodeInfo detect();    // hostname, a fresh id, MHz x cores, Nomad's cgroup tree made
};

struct AllocLayout {
  std::string allocDir;     // <data_dir>/alloc/<alloc_id>
  std::string taskDir;      // <alloc_dir>/<task>
  std::string logsDir;      // <alloc_dir>/alloc/logs
  std::string stdoutFifo;   // <logs>/.<task>.stdout.fifo
  std::string stderrFifo;
};

// Creates the alloc and task directories and the two log FIFOs.
// Fails with kSystem if a directory or FIFO cannot be created.
Result<AllocLayout> prepareAllocDir(const std::string& dataDir, const std::string& allocId,
                                    const std::string& taskName);

// Replaces ${NAME} in every string of `config` with env[NAME], as the client
// exposes the task environment to HCL. "$${" escapes. Unknown names fail
// with kInvalidArgument ("Unknown variable").
Result<YAML::Node> interpolateEnv(const YAML::Node& config,
                                  const std::map<std::string, std::string>& env);

// The task environment the client computes (NOMAD_* plus the task's env).
std::map<std::string, std::string> taskEnvironment(const TaskFile& task, const std::string& allocId,
                                                   const AllocLayout& layout);

// Full TaskConfig. The driver config is encoded against `spec` unless
// task.rawConfig. Fails with kInvalidArgument like the client's "Failed
// Validation" when the config does not match the spec.
Result<drivers::TaskConfig> buildTaskConfig(const TaskFile& task,
                                            const hashicorp::nomad::plugins::shared::hclspec::Spec& spec,
                                            const std::string& allocId, const AllocLayout& layout,
                                            const NodeInfo& node);

}  // namespace s2z::standin
