#include "driver/plugin_config.h"

#include <arpa/inet.h>

#include <charconv>

#include <fmt/format.h>

#include "driver/msgpack_config.h"

namespace s2z::driver {

std::optional<agent::SleepTier> parseSleepTier(std::string_view name) {
  if (name == "light") return agent::SleepTier::kLight;
  if (name == "deep") return agent::SleepTier::kDeep;
  return std::nullopt;
}

namespace {

Error keyError(std::string_view key, std::string_view what) {
  return makeError(ErrorCode::kInvalidArgument, fmt::format("config key \"{}\": {}", key, what));
}

// Reads an optional value into target, propagating errors.
#define S2Z_READ(expr, target)               \
  do {                                       \
    auto r_ = (expr);                        \
    if (!r_.ok()) return r_.error();         \
    if (r_->has_value()) (target) = **r_;    \
  } while (0)

}  // namespace

const char* hypervisorConfigName(vmm::Hypervisor h) {
  return h == vmm::Hypervisor::kQemu ? "qemu" : "cloud-hypervisor";
}

const char* acceleratorChoiceName(AcceleratorChoice a) {
  switch (a) {
    case AcceleratorChoice::kAuto: return "auto";
    case AcceleratorChoice::kKvm: return "kvm";
    case AcceleratorChoice::kTcg: return "tcg";
  }
  return "auto";
}

Result<vmm::Hypervisor> parseHypervisorName(std::string_view name, std::string_view key) {
  if (name == "qemu") return vmm::Hypervisor::kQemu;
  if (name == "cloud-hypervisor") return vmm::Hypervisor::kCloudHypervisor;
  return keyError(key, fmt::format("expected \"qemu\" or \"cloud-hypervisor\", got \"{}\"", name));
}

Result<void> validateSubnet(std::string_view cidr, std::string_view key) {
  auto fail = [&] {
    return keyError(key, fmt::format("expected an IPv4 network like \"10.89.0.0/24\" with a prefix "
                                     "length from 8 to 29, got \"{}\"",
                                     cidr));
  };
  size_t slash = cidr.find('/');
  if (slash == std::string_view::npos) return fail();
  std::string addr(cidr.substr(0, slash));
  std::string_view prefixText = cidr.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] = std::from_chars(prefixText.data(), prefixText.data() + prefixText.size(), prefix);
  if (ec != std::errc() || end != prefixText.data() + prefixText.size() || prefixText.empty()) {
    return fail();
  }
  in_addr parsed{};
  if (inet_pton(AF_INET, addr.c_str(), &parsed) != 1) return fail();
  if (prefix < 8 || prefix > 29) return fail();
  uint32_t host = ntohl(parsed.s_addr);
  uint32_t hostMask = (prefix == 32) ? 0 : (0xffffffffu >> prefix);
  if ((host & hostMask) != 0) {
    uint32_t network = host & ~hostMask;
    in_addr net{htonl(network)};
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &net, buf, sizeof buf);
    return keyError(key, fmt::format("\"{}\" has host bits set; did you mean \"{}/{}\"?", cidr, buf,
                                     prefix));
  }
  return okResult();
}

Result<PluginConfig> decodePluginConfig(std::string_view msgpack) {
  auto doc = MsgpackDocument::parse(msgpack, "plugin config");
  if (!doc.ok()) return doc.error();
  auto rootResult = ConfigObject::from(doc->root(), "");
  if (!rootResult.ok()) return rootResult.error();
  ConfigObject& root = *rootResult;

  PluginConfig config;
  std::string hypervisor = "qemu";
  S2Z_READ(root.string("hypervisor"), hypervisor);
  auto kind = parseHypervisorName(hypervisor, "hypervisor");
  if (!kind.ok()) return kind.error();
  config.hypervisor = *kind;

  S2Z_READ(root.string("qemu_path"), config.qemuPath);
  if (config.qemuPath.empty()) return keyError("qemu_path", "must not be empty");
  S2Z_READ(root.string("cloud_hypervisor_path"), config.cloudHypervisorPath);
  if (config.cloudHypervisorPath.empty()) {
    return keyError("cloud_hypervisor_path", "must not be empty");
  }

  std::string accel = "auto";
  S2Z_READ(root.string("accelerator"), accel);
  if (accel == "auto") config.accelerator = AcceleratorChoice::kAuto;
  else if (accel == "kvm") config.accelerator = AcceleratorChoice::kKvm;
  else if (accel == "tcg") config.accelerator = AcceleratorChoice::kTcg;
  else return keyError("accelerator", fmt::format("expected \"auto\", \"kvm\" or \"tcg\", got \"{}\"", accel));

  std::string stateDir = config.stateDir;
  S2Z_READ(root.string("state_dir"), stateDir);
  if (stateDir.empty() || stateDir[0] != '/') {
    return keyError("state_dir", fmt::format("expected an absolute path, got \"{}\"", stateDir));
  }
  config.stateDir = stateDir;

  std::string kernel, initrd, kata;
  std::string agentKernel = config.agentKernel, agentInitrd = config.agentInitrd;
  S2Z_READ(root.string("kernel"), kernel);
  S2Z_READ(root.string("initrd"), initrd);
  S2Z_READ(root.string("kata_config"), kata);
  S2Z_READ(root.string("agent_kernel"), agentKernel);
  S2Z_READ(root.string("agent_initrd"), agentInitrd);
  for (auto [key, value] : {std::pair{"kernel", &kernel}, {"initrd", &initrd}, {"kata_config", &kata},
                            {"agent_kernel", &agentKernel}, {"agent_initrd", &agentInitrd}}) {
    if (!value->empty() && (*value)[0] != '/') {
      return keyError(key, fmt::format("expected an absolute path, got \"{}\"", *value));
    }
  }
  config.kernel = kernel;
  config.initrd = initrd;
  config.kataConfig = kata;
  if (!agentKernel.empty()) config.agentKernel = agentKernel;
  if (!agentInitrd.empty()) config.agentInitrd = agentInitrd;

  S2Z_READ(root.string("subnet"), config.subnet);
  auto subnetOk = validateSubnet(config.subnet, "subnet");
  if (!subnetOk.ok()) return subnetOk.error();

  S2Z_READ(root.duration("idle_timeout"), config.idleTimeout);
  std::optional<std::string> tier;
  S2Z_READ(root.string("sleep"), tier);
  if (tier) {
    auto parsed = parseSleepTier(*tier);
    if (!parsed) return keyError("sleep", fmt::format("must be \"light\" or \"deep\", not \"{}\"", *tier));
    config.sleep = *parsed;
  }
  S2Z_READ(root.duration("deep_sleep_after"), config.deepSleepAfter);
  std::optional<std::string> lightCache;
  S2Z_READ(root.string("light_sleep_cache"), lightCache);
  if (lightCache) {
    auto parsed = vmm::parseLightSleepCache(*lightCache);
    if (!parsed) {
      return keyError("light_sleep_cache", fmt::format("must be {}, not \"{}\"", kLightSleepCacheValues, *lightCache));
    }
    config.lightSleepCache = *parsed;
  }
  std::optional<int64_t> standbys;
  S2Z_READ(root.integer("standby_vmms", 0, 4096), standbys);
  if (standbys) config.standbyVmms = static_cast<unsigned>(*standbys);
  std::optional<int64_t> overhead;
  S2Z_READ(root.integer("vmm_memory_overhead", 0, 65536), overhead);
  if (overhead) config.vmmMemoryOverheadMib = static_cast<uint64_t>(*overhead);
  std::optional<int64_t> kept;
  S2Z_READ(root.integer("quarantine_kept", 1, 1024), kept);
  if (kept) config.quarantineKept = static_cast<unsigned>(*kept);

  std::optional<int64_t> mark;
  S2Z_READ(root.integer("health_check_mark", 0, 0xffffffffLL), mark);
  if (mark) config.healthCheckMark = static_cast<uint32_t>(*mark);
  S2Z_READ(root.string("health_check_cgroup"), config.healthCheckCgroup);
  // The checker's packets are told apart by this mark: without one they
  // would count as activity and a checked VM would never go idle.
  if (!config.healthCheckCgroup.empty() && config.healthCheckMark == 0) {
    return keyError("health_check_mark", "must be set (a non-zero bit) when health_check_cgroup is");
  }

  auto auth = root.block("auth");
  if (!auth.ok()) return auth.error();
  if (auth->has_value()) {
    ConfigObject& block = **auth;
    std::string file;
    S2Z_READ(block.string("config"), file);
    if (!file.empty() && file[0] != '/') return block.keyError("config", "expected an absolute path, got \"" + file + "\"");
    config.authConfig = file;
    if (auto unknown = block.rejectUnknownKeys(); !unknown.ok()) return unknown.error();
  }
  S2Z_READ(root.boolean("registry_tls_verify"), config.registryTlsVerify);
  std::string certs;
  S2Z_READ(root.string("registry_certs_dir"), certs);
  if (!certs.empty() && certs[0] != '/') {
    return keyError("registry_certs_dir", fmt::format("expected an absolute path, got \"{}\"", certs));
  }
  config.registryCertsDir = certs;
  auto gc = root.block("image_gc");
  if (!gc.ok()) return gc.error();
  if (gc->has_value()) {
    ConfigObject& block = **gc;
    S2Z_READ(block.boolean("enabled"), config.imageGc.enabled);
    S2Z_READ(block.duration("delay"), config.imageGc.delay);
    if (auto unknown = block.rejectUnknownKeys(); !unknown.ok()) return unknown.error();
  }

  auto unknown = root.rejectUnknownKeys();
  if (!unknown.ok()) return unknown.error();
  return config;
}

}  // namespace s2z::driver
