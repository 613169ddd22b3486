#include "driver/task_config.h"

#include <set>

#include <fmt/format.h>

#include "agent/task_cgroup_limits.h"
#include "driver/msgpack_config.h"
#include "driver/plugin_config.h"

namespace s2z::driver {
namespace {

#define S2Z_READ(expr, target)            \
  do {                                    \
    auto r_ = (expr);                     \
    if (!r_.ok()) return r_.error();      \
    if (r_->has_value()) (target) = **r_; \
  } while (0)

Result<ScaleToZeroConfig> decodeScaleToZero(ConfigObject& block) {
  ScaleToZeroConfig out;
  out.enabled = true;
  S2Z_READ(block.boolean("enabled"), out.enabled);
  S2Z_READ(block.duration("idle_timeout"), out.idleTimeout);
  S2Z_READ(block.boolean("wake_to_stop"), out.wakeToStop);
  std::string scriptChecks = "pass";
  S2Z_READ(block.string("script_checks"), scriptChecks);
  if (scriptChecks != "pass" && scriptChecks != "wake") {
    return block.keyError("script_checks", "must be \"pass\" or \"wake\", not \"" + scriptChecks + "\"");
  }
  out.scriptChecksWake = scriptChecks == "wake";
  std::optional<std::string> tier;
  S2Z_READ(block.string("sleep"), tier);
  if (tier) {
    auto parsed = parseSleepTier(*tier);
    if (!parsed) return block.keyError("sleep", "must be \"light\" or \"deep\", not \"" + *tier + "\"");
    out.sleep = *parsed;
  }
  S2Z_READ(block.duration("deep_sleep_after"), out.deepSleepAfter);
  std::optional<std::string> lightCache;
  S2Z_READ(block.string("light_sleep_cache"), lightCache);
  if (lightCache) {
    auto parsed = vmm::parseLightSleepCache(*lightCache);
    if (!parsed) {
      return block.keyError("light_sleep_cache",
                            std::string("must be ") + kLightSleepCacheValues + ", not \"" + *lightCache + "\"");
    }
    out.lightSleepCache = *parsed;
  }
  auto unknown = block.rejectUnknownKeys();
  if (!unknown.ok()) return unknown.error();
  return out;
}

}  // namespace

Result<TaskConfig> decodeTaskConfig(std::string_view msgpack) {
  auto doc = MsgpackDocument::parse(msgpack, "task config");
  if (!doc.ok()) return doc.error();
  auto rootResult = ConfigObject::from(doc->root(), "");
  if (!rootResult.ok()) return rootResult.error();
  ConfigObject& root = *rootResult;

  TaskConfig config;
  S2Z_READ(root.string("kernel"), config.kernel);
  S2Z_READ(root.string("initrd"), config.initrd);
  S2Z_READ(root.string("rootfs"), config.rootfs);
  S2Z_READ(root.string("cmdline"), config.cmdline);
  if (config.cmdline.find('\n') != std::string::npos) {
    return root.keyError("cmdline", "must be a single line");
  }

  S2Z_READ(root.string("command"), config.command);
  S2Z_READ(root.stringList("args"), config.args);
  S2Z_READ(root.string("working_dir"), config.workingDir);
  if (!config.command.empty() && config.command.find('\0') != std::string::npos) {
    return root.keyError("command", "must not contain NUL");
  }
  S2Z_READ(root.string("image"), config.image);
  std::optional<std::vector<std::string>> entrypoint;
  S2Z_READ(root.stringList("entrypoint"), entrypoint);
  config.entrypoint = entrypoint;
  std::optional<bool> forcePull;
  S2Z_READ(root.boolean("force_pull"), forcePull);
  std::optional<std::chrono::milliseconds> pullTimeout;
  S2Z_READ(root.duration("image_pull_timeout"), pullTimeout);
  const bool hasImage = !config.image.empty();
  if (hasImage && !config.rootfs.empty()) return root.keyError("rootfs", "not with image (the image is the root)");
  if (!hasImage && entrypoint) return root.keyError("entrypoint", "needs image");
  if (!hasImage && forcePull) return root.keyError("force_pull", "needs image");
  if (!hasImage && pullTimeout) return root.keyError("image_pull_timeout", "needs image");
  auto auth = root.block("auth");
  if (!auth.ok()) return auth.error();
  if (auth->has_value()) {
    ConfigObject& block = **auth;
    RegistryAuth creds;
    S2Z_READ(block.string("username"), creds.username);
    S2Z_READ(block.string("password"), creds.password);
    if (auto unknown = block.rejectUnknownKeys(); !unknown.ok()) return unknown.error();
    if (creds.username.empty()) return block.keyError("username", "must not be empty");
    config.auth = creds;
  }
  std::optional<bool> softFail;
  S2Z_READ(root.boolean("auth_soft_fail"), softFail);
  if (!hasImage && config.auth) return root.keyError("auth", "needs image");
  if (!hasImage && softFail) return root.keyError("auth_soft_fail", "needs image");
  config.authSoftFail = softFail.value_or(false);
  config.forcePull = forcePull.value_or(false);
  if (pullTimeout) config.imagePullTimeout = *pullTimeout;
  if (config.command.empty() && !hasImage && !config.args.empty()) {
    return root.keyError("args", "needs command or image");
  }
  if (config.command.empty() && !hasImage && !config.workingDir.empty()) {
    return root.keyError("working_dir", "needs command or image");
  }
  if (!config.workingDir.empty() && config.workingDir.front() != '/') {
    return root.keyError("working_dir", "must be an absolute path inside the VM");
  }

  std::optional<bool> readonlyRootfs;
  S2Z_READ(root.boolean("readonly_rootfs"), readonlyRootfs);
  std::optional<int64_t> writableMib;
  S2Z_READ(root.integer("writable_disk_mb", 16, int64_t{1} << 22), writableMib);
  const bool agentTask = hasImage || !config.command.empty();
  if (!agentTask && readonlyRootfs) return root.keyError("readonly_rootfs", "needs command or image");
  if (!agentTask && writableMib) return root.keyError("writable_disk_mb", "needs command or image");
  config.readonlyRootfs = readonlyRootfs.value_or(false);
  if (writableMib) config.writableDiskMib = static_cast<uint64_t>(*writableMib);

  std::optional<int64_t> vcpus;
  S2Z_READ(root.integer("vcpus", 1, kMaxVcpus), vcpus);
  if (vcpus) config.vcpus = static_cast<unsigned>(*vcpus);

  std::optional<bool> cpuHardLimit;
  S2Z_READ(root.boolean("cpu_hard_limit"), cpuHardLimit);
  config.cpuHardLimit = cpuHardLimit.value_or(false);
  std::optional<int64_t> cfsPeriod;
  S2Z_READ(root.integer("cpu_cfs_period", agent::kMinCfsPeriodMicros, agent::kMaxCfsPeriodMicros), cfsPeriod);
  if (cfsPeriod) config.cfsPeriodMicros = static_cast<uint64_t>(*cfsPeriod);

  S2Z_READ(root.stringList("ports"), config.ports);
  std::set<std::string> seen;
  for (const auto& label : config.ports) {
    if (label.empty()) return root.keyError("ports", "a port label is empty");
    if (!seen.insert(label).second) {
      return root.keyError("ports", fmt::format("port label \"{}\" is listed twice", label));
    }
  }

  auto block = root.block("scale_to_zero");
  if (!block.ok()) return block.error();
  if (block->has_value()) {
    auto stz = decodeScaleToZero(**block);
    if (!stz.ok()) return stz.error();
    config.scaleToZero = *stz;
  }

  std::optional<std::string> hypervisor;
  S2Z_READ(root.string("hypervisor"), hypervisor);
  if (hypervisor && !hypervisor->empty()) {
    auto kind = parseHypervisorName(*hypervisor, "hypervisor");
    if (!kind.ok()) return kind.error();
    config.hypervisor = *kind;
  }

  auto unknown = root.rejectUnknownKeys();
  if (!unknown.ok()) return unknown.error();
  return config;
}

}  // namespace s2z::driver
