#include "driver/task_resolve.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <sstream>

#include <fmt/format.h>

#include "driver/binary_lookup.h"
#include "driver/group_network.h"
#include "driver/signal_name.h"
#include "driver/task_limits.h"
#include "driver/task_volumes.h"

namespace s2z::driver {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kDefaultMemoryMib = 256;

Error keyError(std::string_view key, std::string_view what) {
  return makeError(ErrorCode::kInvalidArgument, fmt::format("config key \"{}\": {}", key, what));
}

// How many cores a cpu list names ("2,3": Nomad joins the reserved cores
// with commas; "0-3" ranges are counted too).
unsigned coreCount(const std::string& cpus) {
  unsigned n = 0;
  std::stringstream in(cpus);
  for (std::string item; std::getline(in, item, ',');) {
    unsigned first = 0, last = 0;
    char dash = 0;
    std::istringstream range(item);
    if (!(range >> first)) continue;
    last = (range >> dash >> last && last >= first) ? last : first;
    n += last - first + 1;
  }
  return n;
}

// A task-config path made absolute against the task directory.
Result<fs::path> taskPath(const std::string& value, const pb::TaskConfig& nomad,
                          std::string_view key) {
  if (value.empty()) return fs::path();
  fs::path p(value);
  if (p.is_absolute()) return p;
  if (nomad.alloc_dir().empty()) {
    return keyError(key, fmt::format("relative path \"{}\" needs the task directory, and Nomad "
                                     "sent no alloc_dir",
                                     value));
  }
  return (fs::path(nomad.alloc_dir()) / nomad.name() / p).lexically_normal();
}

}  // namespace

std::vector<std::string> imageArgv(const TaskConfig& task, const image::ImageConfig& image) {
  // Docker's rules: an Entrypoint given by the task drops the image's Cmd too.
  std::vector<std::string> argv = task.entrypoint ? *task.entrypoint : image.entrypoint;
  if (!task.command.empty()) {
    argv.push_back(task.command);
    argv.insert(argv.end(), task.args.begin(), task.args.end());
  } else if (!task.args.empty()) {
    argv.insert(argv.end(), task.args.begin(), task.args.end());
  } else if (!task.entrypoint) {
    argv.insert(argv.end(), image.cmd.begin(), image.cmd.end());
  }
  return argv;
}

namespace {

// An image's StopSignal ("SIGQUIT", "QUIT" or "3") as a number; 0 (SIGTERM)
// for none or one this host does not know.
int imageStopSignal(const std::string& name) {
  if (name.empty()) return 0;
  if (name.find_first_not_of("0123456789") == std::string::npos && name.size() <= 2) {
    int n = std::stoi(name);
    return n > 0 && n < 65 ? n : 0;
  }
  return signalNumber(name).value_or(0);
}

// The guest agent's workload: argv from command and args, and what Nomad
// says of the task (env, user, dns) as docker would use it.
agent::WorkloadSpec workloadFor(const TaskConfig& task, const pb::TaskConfig& nomad,
                                const std::string& hostname, const image::ImageConfig& image) {
  agent::WorkloadSpec w;
  w.argv = imageArgv(task, image);
  // The image's Env under the task's: the task wins.
  std::map<std::string, std::string> env;
  for (const auto& e : image.env) {
    auto eq = e.find('=');
    if (eq != std::string::npos) env[e.substr(0, eq)] = e.substr(eq + 1);
  }
  for (const auto& [key, value] : nomad.env()) env[key] = value;
  // The task's directories are copied into the guest (agent/task_dirs.h):
  // the variables name them where the workload sees them.
  if (!nomad.alloc_dir().empty()) {
    std::filesystem::path allocDir(nomad.alloc_dir());
    w.localDir = allocDir / nomad.name() / "local";
    w.secretsDir = allocDir / nomad.name() / "secrets";
    w.allocDir = allocDir / "alloc";
    env["NOMAD_TASK_DIR"] = "/local";
    env["NOMAD_SECRETS_DIR"] = "/secrets";
    env["NOMAD_ALLOC_DIR"] = "/alloc";
  }
  for (const auto& [key, value] : env) w.env.push_back(key + "=" + value);
  w.workingDir = task.workingDir.empty() ? image.workingDir : task.workingDir;
  w.user = nomad.user().empty() ? image.user : nomad.user();
  w.hostname = hostname;
  const auto& dns = nomad.dns();
  w.dnsServers.assign(dns.servers().begin(), dns.servers().end());
  w.dnsSearches.assign(dns.searches().begin(), dns.searches().end());
  w.dnsOptions.assign(dns.options().begin(), dns.options().end());
  w.wakeToStop = task.scaleToZero.wakeToStop;
  w.scriptChecksWake = task.scaleToZero.scriptChecksWake;
  w.readonlyRoot = task.readonlyRootfs;
  // docker's stop: the image's StopSignal when Nomad gives none. An unknown
  // name falls back to SIGTERM rather than failing a task over it.
  w.stopSignal = imageStopSignal(image.stopSignal);
  return w;
}

}  // namespace

std::string instanceName(const std::string& allocId, const std::string& taskId) {
  // FNV-1a: stable across processes and builds (std::hash is not).
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : taskId) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  std::string prefix;
  for (char c : allocId) {
    if (prefix.size() == 8) break;
    if (std::isalnum(static_cast<unsigned char>(c))) prefix.push_back(c);
  }
  if (prefix.empty()) prefix = "task";
  return fmt::format("{}-{:08x}", prefix, static_cast<uint32_t>(h ^ (h >> 32)));
}

Result<agent::InstanceSpec> resolveInstanceSpec(const ResolveInputs& in) {
  const pb::TaskConfig& nomad = *in.nomad;
  const TaskConfig& task = *in.task;
  const PluginConfig& plugin = *in.plugin;
  const vmm::kata::KataDefaults* kata = in.kata;

  agent::InstanceSpec spec;
  spec.taskId = nomad.id();
  spec.name = instanceName(nomad.alloc_id(), nomad.id());

  spec.hypervisor = task.hypervisor ? *task.hypervisor
                    : kata          ? kata->hypervisor
                                    : plugin.hypervisor;
  std::string binary = plugin.binaryFor(spec.hypervisor);
  if (kata && kata->hypervisor == spec.hypervisor && !kata->hypervisorPath.empty()) {
    binary = kata->hypervisorPath.string();
  }
  auto found = findExecutable(hypervisorConfigName(spec.hypervisor), binary, in.pathEnv);
  if (!found.ok()) return found.error();
  spec.binary = *found;
  spec.accelerator = in.accelerator;

  if (!task.image.empty()) {
    if (!in.image) return keyError("image", "was not prepared");  // the driver pulls before resolving
    spec.workload = workloadFor(task, nomad, spec.name, in.image->config);
    if (spec.workload->argv.empty()) {
      return keyError("image", fmt::format("\"{}\" has no Entrypoint or Cmd; set command", task.image));
    }
    spec.rootfs = in.image->disk;
  } else if (!task.command.empty()) {
    spec.workload = workloadFor(task, nomad, spec.name, image::ImageConfig{});
  }
  spec.scratchMib = task.writableDiskMib;
  if (nomad.mounts_size() > 0) {
    if (!spec.workload) {
      return makeError(ErrorCode::kInvalidArgument,
                       "mounts: volumes need the guest agent (a task with `command`) to mount them");
    }
    auto volumes = resolveVolumes(nomad);
    if (!volumes.ok()) return volumes.error();
    spec.workload->volumes = std::move(*volumes);
  }
  if (nomad.devices_size() > 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("devices: device passthrough is not supported ({} requested)",
                                 nomad.devices(0).host_path()));
  }

  auto kernel = taskPath(task.kernel, nomad, "kernel");
  if (!kernel.ok()) return kernel.error();
  spec.kernel = *kernel;
  // The agent guest is made for agent tasks; other guests bring their own.
  if (spec.kernel.empty() && spec.workload) spec.kernel = plugin.agentKernel;
  if (spec.kernel.empty()) spec.kernel = plugin.kernel;
  if (spec.kernel.empty() && kata) spec.kernel = kata->kernel;
  if (spec.kernel.empty()) {
    return keyError("kernel", "no guest kernel: set kernel in the task config or in the plugin "
                              "config (or point kata_config at a Kata configuration)");
  }

  auto initrd = taskPath(task.initrd, nomad, "initrd");
  if (!initrd.ok()) return initrd.error();
  spec.initrd = *initrd;
  if (spec.initrd.empty() && spec.workload && task.kernel.empty()) spec.initrd = plugin.agentInitrd;
  if (spec.initrd.empty()) spec.initrd = plugin.initrd;
  if (spec.initrd.empty() && kata) spec.initrd = kata->initrd;

  auto rootfs = taskPath(task.rootfs, nomad, "rootfs");
  if (!rootfs.ok()) return rootfs.error();
  if (!rootfs->empty()) spec.rootfs = *rootfs;
  // Kata's image is its root disk; use it only when nothing else boots the guest.
  if (spec.rootfs.empty() && spec.initrd.empty() && kata) spec.rootfs = kata->image;
  if (spec.workload && spec.rootfs.empty()) {
    return keyError("rootfs", "a task with a command needs a root filesystem image to run it in");
  }

  spec.cmdline = task.cmdline;
  // A task given cores of its own gets a vCPU on each, as a container would
  // run on all of them.
  const unsigned reserved = coreCount(nomad.resources().linux_resources().cpuset_cpus());
  spec.vcpus = task.vcpus ? *task.vcpus
               : reserved > 0        ? std::min(reserved, kMaxVcpus)
               : (kata && kata->vcpus) ? std::clamp(*kata->vcpus, 1u, kMaxVcpus)
                                       : 1u;

  const auto& memory = nomad.resources().allocated_resources().memory();
  if (memory.memory_mb() > 0) spec.memoryMib = static_cast<uint64_t>(memory.memory_mb());
  else if (kata && kata->memoryMib && *kata->memoryMib > 0) spec.memoryMib = *kata->memoryMib;
  else spec.memoryMib = kDefaultMemoryMib;

  spec.stdoutPath = nomad.stdout_path();
  spec.cgroup = nomad.resources().linux_resources().cpuset_cgroup();
  spec.cgroupScope = nomad.alloc_id() + "." + nomad.name();  // Nomad's cgroupslib.ScopeCG1
  auto limits = taskLimitsFor(nomad.resources(), LimitInputs{spec.memoryMib, plugin.vmmMemoryOverheadMib,
                                                              plugin.nodeTotalComputeMhz, in.hostCpus,
                                                              task.cpuHardLimit, task.cfsPeriodMicros});
  if (!limits.ok()) return limits.error();
  spec.limits = std::move(limits).value();
  spec.stderrPath = nomad.stderr_path();
  spec.scaleToZero = task.scaleToZero.enabled;
  spec.idleTimeout = task.scaleToZero.idleTimeout ? *task.scaleToZero.idleTimeout
                                                  : plugin.idleTimeout;
  spec.sleepTier = task.scaleToZero.sleep.value_or(plugin.sleep);
  spec.deepSleepAfter = task.scaleToZero.deepSleepAfter.value_or(plugin.deepSleepAfter);
  spec.lightSleepCache = task.scaleToZero.lightSleepCache.value_or(plugin.lightSleepCache);
  auto group = groupNetworkFor(nomad);
  if (!group.ok()) return group.error();
  spec.group = std::move(*group);
  return spec;
}

Result<void> checkInstanceFiles(const agent::InstanceSpec& spec) {
  struct File {
    const char* key;
    const fs::path* path;
    bool blockOk;
  };
  for (const File& f : {File{"kernel", &spec.kernel, false}, File{"initrd", &spec.initrd, false},
                        File{"rootfs", &spec.rootfs, true}}) {
    if (f.path->empty()) continue;
    struct stat st {};
    if (::stat(f.path->c_str(), &st) != 0) {
      return keyError(f.key, fmt::format("{} \"{}\" not found", f.key, f.path->string()));
    }
    bool kindOk = S_ISREG(st.st_mode) || (f.blockOk && S_ISBLK(st.st_mode));
    if (!kindOk) {
      return keyError(f.key, fmt::format("{} \"{}\" is not a regular file", f.key,
                                         f.path->string()));
    }
    if (::access(f.path->c_str(), R_OK) != 0) {
      return keyError(f.key, fmt::format("{} \"{}\" is not readable", f.key, f.path->string()));
    }
  }
  return okResult();
}

Result<std::map<std::string, int32_t>> portMapFor(const std::vector<std::string>& labels,
                                                  const pb::Resources& resources) {
  std::map<std::string, int32_t> out;
  for (const auto& label : labels) {
    std::optional<int32_t> port;
    for (const auto& mapping : resources.ports()) {
      if (mapping.label() == label) port = mapping.to() != 0 ? mapping.to() : mapping.value();
    }
    // Legacy task-level networks (resources.network in the task).
    for (const auto& network : resources.allocated_resources().networks()) {
      for (const auto* list : {&network.reserved_ports(), &network.dynamic_ports()}) {
        for (const auto& p : *list) {
          if (!port && p.label() == label) port = p.value();
        }
      }
    }
    if (!port) {
      return keyError("ports", fmt::format("port label \"{}\" is not defined in the group's "
                                           "network block",
                                           label));
    }
    out[label] = *port;
  }
  return out;
}

}  // namespace s2z::driver
