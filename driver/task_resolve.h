// StartTask's "resolve defaults" and "check files" stages: turns the job's
// task config plus the plugin config (and Kata defaults) into the agent's
// InstanceSpec, and maps the task's port labels to ports inside the VM.
//
// Precedence for every default: task config, then plugin config, then the
// Kata configuration file (kata_config). The hypervisor kind is the task's
// `hypervisor`, else Kata's, else the plugin's `hypervisor`; its binary is
// Kata's `path` when Kata names that kind, else qemu_path /
// cloud_hypervisor_path. Relative paths in the task config are relative to
// the task directory (<alloc_dir>/<task name>, where artifacts land).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/instance.h"
#include "common/result.h"
#include "driver/plugin_config.h"
#include "driver/proto_types.h"
#include "driver/task_config.h"
#include "image/image_store.h"
#include "vmm/kata/kata_config.h"

namespace s2z::driver {

struct ResolveInputs {
  const pb::TaskConfig* nomad = nullptr;
  const TaskConfig* task = nullptr;
  const PluginConfig* plugin = nullptr;
  const vmm::kata::KataDefaults* kata = nullptr;  // nullptr: no kata_config
  vmm::Accelerator accelerator = vmm::Accelerator::kTcg;
  std::string pathEnv;
  const image::PreparedImage* image = nullptr;  // the task's `image`, prepared
  unsigned hostCpus = 1;  // the CPUs the plugin may run on (a hard CPU limit spans them)
};

// Builds the spec. Fails with kInvalidArgument when no kernel is configured
// anywhere or a relative path has no task directory, kNotFound when the
// hypervisor binary is missing (message names it).
Result<agent::InstanceSpec> resolveInstanceSpec(const ResolveInputs& in);

// Checks that kernel, initrd and rootfs exist and are readable regular files
// (rootfs may be a block device). kInvalidArgument naming the key and path:
// `config key "kernel": kernel "/x" not found`.
Result<void> checkInstanceFiles(const agent::InstanceSpec& spec);

// The workload's argv with docker's rules: the task's `entrypoint` (else the
// image's Entrypoint), then `command` + `args`, else `args`, else the image's
// Cmd (dropped when the task sets its own entrypoint).
std::vector<std::string> imageArgv(const TaskConfig& task, const image::ImageConfig& image);

// A short name unique per task id, safe in file names: "<alloc8>-<hash8>".
std::string instanceName(const std::string& allocId, const std::string& taskId);

// label -> port inside the VM for each label in `ports`: the group port
// mapping's `to`, or its `value` when `to` is 0 (legacy task networks are
// searched too). kInvalidArgument for a label the allocation does not have.
Result<std::map<std::string, int32_t>> portMapFor(const std::vector<std::string>& labels,
                                                  const pb::Resources& resources);

}  // namespace s2z::driver
