// A task's `config {}` block from the job file, decoded from
// TaskConfig.msgpack_driver_config and validated. Key names are a public
// interface (config_schema.cpp declares them to Nomad).
//
// Memory is not here: it comes from the task's `resources { memory = N }`
// (memory_mb). memory_max (memory oversubscription) is deliberately not used
// for the VM size: a VM's RAM is fixed at boot, so the guest would see the
// maximum as its own RAM and the scheduler's reservation would be a lie.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/instance.h"
#include "common/result.h"
#include "vmm/vmm.h"

namespace s2z::driver {

inline constexpr unsigned kMaxVcpus = 64;

struct ScaleToZeroConfig {
  bool enabled = false;  // block absent: off; block present: on unless enabled = false
  std::optional<std::chrono::milliseconds> idleTimeout;  // nullopt: the plugin's idle_timeout
  bool wakeToStop = true;  // StopTask wakes a sleeping workload for its signal
  // script_checks = "wake": ExecTask wakes a sleeping task to run a script
  // check; "pass" (default): it answers as a passing check, unrun.
  bool scriptChecksWake = false;
  // nullopt: the plugin's `sleep` / `deep_sleep_after`.
  std::optional<agent::SleepTier> sleep;
  std::optional<std::chrono::milliseconds> deepSleepAfter;
  std::optional<vmm::LightSleepCache> lightSleepCache;  // nullopt: the plugin's
};

// auth { username, password }: registry credentials for the task's image.
struct RegistryAuth {
  std::string username, password;
};

inline constexpr uint64_t kDefaultWritableDiskMib = 1024;

struct TaskConfig {
  // Paths as written; relative ones are resolved against the task directory
  // (where Nomad puts artifacts) when the task starts. Empty: use defaults.
  std::string kernel, initrd, rootfs;
  std::string cmdline;               // appended to the driver's own guest arguments
  // The guest agent's workload (docker driver names). A non-empty command
  // makes the task an agent task: rootfs is its root filesystem, and kernel
  // and initrd default to the agent guest installed with the plugin.
  std::string command;
  std::vector<std::string> args;
  std::string workingDir;
  // An OCI/Docker image as the workload's root (image/image_store.h): its
  // Entrypoint/Cmd/Env/WorkingDir/User apply with docker's rules; `entrypoint`
  // replaces the image's Entrypoint, `command`/`args` its Cmd. Not with rootfs.
  std::string image;
  std::optional<std::vector<std::string>> entrypoint;  // nullopt: the image's
  bool forcePull = false;
  std::chrono::milliseconds imagePullTimeout{5 * 60 * 1000};
  std::optional<RegistryAuth> auth;  // nullopt: the plugin's auth { config }, else none
  // A failure to find credentials (the plugin's auth config unreadable) pulls
  // without them instead of failing the task (the docker driver's option).
  bool authSoftFail = false;
  // Agent tasks (command or image): the root is read-only to the workload
  // (docker's readonly_rootfs); the per-task writable disk's size.
  bool readonlyRootfs = false;
  uint64_t writableDiskMib = kDefaultWritableDiskMib;
  std::optional<unsigned> vcpus;     // nullopt: the reserved cores' count, kata default_vcpus, else 1
  // Docker's hard CPU limit: the task's `cpu` as a CFS quota per period (µs),
  // not only a weight (driver/task_limits.h).
  bool cpuHardLimit = false;
  uint64_t cfsPeriodMicros = 100000;
  std::vector<std::string> ports;    // group network port labels to expose
  ScaleToZeroConfig scaleToZero;
  std::optional<vmm::Hypervisor> hypervisor;  // nullopt: the plugin's
};

// Decodes and validates msgpack_driver_config. Fails with kInvalidArgument
// naming the key and what was expected.
Result<TaskConfig> decodeTaskConfig(std::string_view msgpack);

}  // namespace s2z::driver
