#include "driver/fingerprint.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include "driver/binary_lookup.h"

namespace s2z::driver {
namespace {

constexpr const char* kPrefix = "driver.s2z-kata.";

void checkFile(const char* what, const std::filesystem::path& path,
               std::vector<std::string>& problems) {
  if (path.empty()) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    problems.push_back(fmt::format("{} \"{}\" not found", what, path.string()));
  }
}

}  // namespace

FingerprintFacts gatherFingerprint(Plugin& plugin) {
  FingerprintFacts facts;
  PluginConfig config = plugin.config();

  std::optional<vmm::kata::KataDefaults> kata;
  if (!config.kataConfig.empty()) {
    auto loaded = plugin.host().loadKataConfig(config.kataConfig);
    if (loaded.ok()) kata = *loaded;
    else facts.problems.push_back(fmt::format("kata_config: {}", loaded.error().describe()));
  }

  vmm::Hypervisor kind = kata ? kata->hypervisor : config.hypervisor;
  facts.hypervisor = hypervisorConfigName(kind);
  std::string binary = config.binaryFor(kind);
  if (kata && !kata->hypervisorPath.empty()) binary = kata->hypervisorPath.string();
  auto found = findExecutable(facts.hypervisor, binary, plugin.pathEnv());
  if (!found.ok()) {
    facts.problems.push_back(found.error().describe());
  } else {
    facts.hypervisorBinary = found->string();
    auto info = plugin.host().probeHypervisor(kind, *found);
    if (info.ok()) facts.hypervisorVersion = info->version;
    else facts.problems.push_back(info.error().describe());
  }

  vmm::Accelerator accel = plugin.acceleratorFor(config);
  facts.accelerator = accel == vmm::Accelerator::kKvm ? "kvm" : "tcg";
  if (config.accelerator == AcceleratorChoice::kKvm) {
    auto detected = plugin.detectedAccelerator();
    if (detected.accelerator != vmm::Accelerator::kKvm) {
      facts.problems.push_back(
          fmt::format("accelerator \"kvm\" is configured but KVM is not usable here: {}",
                      detected.reason));
    }
  }

  checkFile("kernel", config.kernel, facts.problems);
  checkFile("initrd", config.initrd, facts.problems);
  if (kata) {
    checkFile("kata kernel", kata->kernel, facts.problems);
    checkFile("kata initrd", kata->initrd, facts.problems);
    checkFile("kata image", kata->image, facts.problems);
  }

  auto agent = plugin.agent();
  if (agent.ok()) facts.agent = (*agent)->status();
  else facts.problems.push_back(agent.error().describe());
  return facts;
}

pb::FingerprintResponse toFingerprint(const FingerprintFacts& facts) {
  pb::FingerprintResponse out;
  auto& attrs = *out.mutable_attributes();
  auto str = [&](const std::string& key, const std::string& value) {
    attrs[kPrefix + key].set_string_val(value);
  };
  str("version", kPluginVersion);
  str("hypervisor", facts.hypervisor);
  if (facts.hypervisorVersion) str("hypervisor_version", *facts.hypervisorVersion);
  str("accelerator", facts.accelerator);
  if (facts.agent) {
    attrs[std::string(kPrefix) + "scale_to_zero"].set_bool_val(facts.agent->scaleToZeroReady);
    attrs[std::string(kPrefix) + "sleeping_tasks"].set_int_val(facts.agent->sleeping);
    attrs[std::string(kPrefix) + "tasks"].set_int_val(facts.agent->instances);
    if (!facts.agent->problem.empty()) str("scale_to_zero_problem", facts.agent->problem);
  }
  if (facts.problems.empty()) {
    out.set_health(pb::FingerprintResponse::HEALTHY);
    out.set_health_description("Healthy");
  } else {
    out.set_health(pb::FingerprintResponse::UNHEALTHY);
    std::string description;
    for (const auto& p : facts.problems) {
      if (!description.empty()) description += "; ";
      description += p;
    }
    out.set_health_description(description);
  }
  return out;
}

}  // namespace s2z::driver
