// Baselines built directly from vmm::Vmm and agent::TapDevice (no agent, no
// BPF): the same restore path once with the tap fd held while the VM sleeps
// and once with it closed, so the only difference is whether the first SYN
// waits in the tap or is dropped (and TCP retransmits it a second later).
#pragma once

#include <vector>

#include "bench/bench_config.h"
#include "common/result.h"

namespace s2z::bench {

struct DirectSample {
  double requestMs = 0;      // SYN sent -> full response; restore starts right after the SYN
  double restoreMs = 0;      // Vmm::restore duration
  double verifyMs = 0;       // the snapshot manifest check alone (part of every restore)
  uint64_t synRetrans = 0;
};

struct DirectResults {
  std::vector<DirectSample> held;
  std::vector<DirectSample> unheld;
  std::vector<std::string> failures;
};

// Boots one guest on tap s2zbd0 (10.89.1.2), then config.directCycles rounds
// of sleep -> request+restore per mode. Removes VM, tap and files at the end.
Result<DirectResults> runDirectScenarios(const BenchConfig& config);

}  // namespace s2z::bench
