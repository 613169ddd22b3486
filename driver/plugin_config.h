// The plugin's own configuration: the agent's `plugin "s2z-kata" { config {} }`
// block, decoded from SetConfig's msgpack and validated. Key names are a
// public interface (config_schema.cpp declares them to Nomad).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "agent/instance.h"
#include "common/result.h"
#include "vmm/vmm.h"

// Where `cmake --install` puts the agent guest (driver/CMakeLists.txt).
#ifndef S2Z_AGENT_GUEST_DIR
#define S2Z_AGENT_GUEST_DIR "/usr/local/lib/s2z-kata"
#endif

namespace s2z::driver {

enum class AcceleratorChoice { kAuto, kKvm, kTcg };

// image_gc { enabled, delay }: the docker driver's gc { image, image_delay }.
struct ImageGcConfig {
  bool enabled = true;
  std::chrono::milliseconds delay{3 * 60 * 1000};
};

// "light" / "deep" (task and plugin `sleep`); nullopt for anything else.
std::optional<agent::SleepTier> parseSleepTier(std::string_view name);
// What task and plugin `light_sleep_cache` accept (vmm::parseLightSleepCache).
inline constexpr const char* kLightSleepCacheValues = "\"keep\", \"drop\" or \"mapped\"";

struct PluginConfig {
  vmm::Hypervisor hypervisor = vmm::Hypervisor::kQemu;
  std::string qemuPath = "qemu-system-x86_64";          // bare name: looked up in PATH
  std::string cloudHypervisorPath = "cloud-hypervisor";
  AcceleratorChoice accelerator = AcceleratorChoice::kAuto;
  std::filesystem::path stateDir = "/var/lib/s2z-kata";
  std::filesystem::path kernel;  // default for tasks; empty: tasks must name one
  std::filesystem::path initrd;
  // The guest agent's kernel and initramfs (scripts/build-agent-guest.sh),
  // the defaults of tasks that set `command`; installed with the plugin.
  std::filesystem::path agentKernel = S2Z_AGENT_GUEST_DIR "/vmlinuz";
  std::filesystem::path agentInitrd = S2Z_AGENT_GUEST_DIR "/initrd.img";
  std::string subnet = "10.89.0.0/24";
  std::chrono::milliseconds idleTimeout{5 * 60 * 1000};
  // Sleep tiers (agent/README.md): the first tier, when light goes deep
  // (0: never), and how many deep sleepers keep a standby VMM host-wide.
  agent::SleepTier sleep = agent::SleepTier::kLight;
  std::chrono::milliseconds deepSleepAfter{30 * 60 * 1000};
  // What a light sleep does with the guest's RAM once written back: "keep"
  // it in the page cache, "drop" it, or leave it "mapped" in the VMM (the
  // fastest wake); vmm::LightSleepCache.
  vmm::LightSleepCache lightSleepCache = vmm::LightSleepCache::kKeep;
  unsigned standbyVmms = 0;
  // Added to a task's `memory` for its cgroups' memory limit: the VMM's own
  // memory beside the guest's RAM (driver/task_limits.h).
  uint64_t vmmMemoryOverheadMib = 128;
  // Snapshots a restore refused, kept in <state_dir>/quarantine (newest).
  unsigned quarantineKept = 4;
  uint32_t healthCheckMark = 0;      // 0: no health filtering
  std::string healthCheckCgroup;     // cgroup v2 path of the health checker
  std::filesystem::path kataConfig;  // Kata configuration.toml with defaults; empty: none
  // Registries (image tasks). auth { config }: a docker config.json whose
  // "auths" skopeo searches for the image's registry; empty: none.
  std::filesystem::path authConfig;
  bool registryTlsVerify = true;
  // CA certificates per registry, laid out as docker's certs.d:
  // <dir>/<host[:port]>/*.crt; empty: skopeo's own (/etc/containers/certs.d,
  // /etc/docker/certs.d).
  std::filesystem::path registryCertsDir;
  ImageGcConfig imageGc;
  // Not from msgpack_config: the node's compute in MHz from SetConfig's
  // nomad_config (Topology, Nomad >= 1.7); 0: not sent.
  uint64_t nodeTotalComputeMhz = 0;

  // The configured binary for a hypervisor kind.
  const std::string& binaryFor(vmm::Hypervisor h) const {
    return h == vmm::Hypervisor::kQemu ? qemuPath : cloudHypervisorPath;
  }
};

// Decodes and validates SetConfig's msgpack_config. Pure: touches nothing on
// the host (validation launches call SetConfig). Fails with kInvalidArgument
// naming the key and what was expected.
Result<PluginConfig> decodePluginConfig(std::string_view msgpack);

// "qemu" / "cloud-hypervisor" -> kind; kInvalidArgument naming key otherwise.
Result<vmm::Hypervisor> parseHypervisorName(std::string_view name, std::string_view key);
// The config spelling of a hypervisor kind ("qemu", "cloud-hypervisor").
const char* hypervisorConfigName(vmm::Hypervisor h);
const char* acceleratorChoiceName(AcceleratorChoice a);

// An IPv4 network in CIDR form with host bits zero and room for the gateway
// (.1) and at least a few VMs (prefix 8..29). kInvalidArgument otherwise.
Result<void> validateSubnet(std::string_view cidr, std::string_view key);

}  // namespace s2z::driver
