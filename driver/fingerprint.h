// The node fingerprint: what this driver can run here (attributes under
// driver.s2z-kata.*) and whether it is healthy. Facts are gathered from the
// host (hypervisor binary and version, accelerator, kernel files, agent) and
// turned into a FingerprintResponse separately, so the formatting is tested
// without a host.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "driver/plugin.h"
#include "driver/proto_types.h"

namespace s2z::driver {

struct FingerprintFacts {
  std::string hypervisor;                        // "qemu" / "cloud-hypervisor"
  std::string hypervisorBinary;                  // resolved path, empty if missing
  std::optional<std::string> hypervisorVersion;  // nullopt when the probe failed
  std::string accelerator;                       // "kvm" / "tcg"
  std::optional<agent::AgentStatus> agent;       // nullopt when the agent failed
  // Why the driver cannot run tasks; empty when healthy. Each names what is
  // missing, e.g. `qemu binary "qemu-system-x86_64" not found in PATH`.
  std::vector<std::string> problems;
};

// Probes the host through plugin (creates the agent if needed).
FingerprintFacts gatherFingerprint(Plugin& plugin);

// HEALTHY "Healthy" without problems, UNHEALTHY with the problems joined by
// "; " otherwise. Attributes: driver.s2z-kata.version, .hypervisor,
// .hypervisor_version, .accelerator, .scale_to_zero (bool), .sleeping_tasks,
// .tasks (ints), .scale_to_zero_problem (when scale-to-zero is off).
pb::FingerprintResponse toFingerprint(const FingerprintFacts& facts);

}  // namespace s2z::driver
