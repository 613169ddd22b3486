// The sleep tiers side by side (issue 11): one task per tier through the real
// agent, cycles of sleep -> request -> wake with the host memory and disk a
// sleeping task holds, then a density run: many tasks asleep at once, the
// host memory they hold in total, woken in random order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/bench_config.h"
#include "common/result.h"

namespace s2z::bench {

struct TierWake {
  double requestMs = 0;     // SYN sent -> full response
  double awakeMs = 0;       // the same request right after, to the running guest: the floor
  double agentWakeMs = 0;   // "Woken" wake_ms
  double sleepMs = 0;       // "Sleeping" pause_ms (light) or snapshot_ms (deep)
  uint64_t synRetrans = 0;
};

// What one sleeping task holds, measured right before the request: the
// kernel's charge of the cgroups Nomad's client made for the task (laid out
// as the stand-in's NomadCgroups does), and its parts added up: the VMM's
// own memory and the page cache of its RAM file.
struct TierFootprint {
  uint64_t cgroupBytes = 0;   // the task's memory charge, as TaskStats report it
  bool cgroupMeasured = false;
  uint64_t heldBytes = 0;     // VMM RssAnon + ramCacheBytes
  uint64_t vmmRssBytes = 0;   // VmRSS of the VMM (or standby); 0 without one
  uint64_t ramCacheBytes = 0; // the guest RAM file in the page cache
  uint64_t diskBytes = 0;     // allocated blocks of the run dir (RAM file, snapshot, ...)
};

struct TierDensity {
  unsigned tasks = 0;
  uint64_t memoryMib = 0;        // each task's guest RAM
  uint64_t heldBytes = 0;        // sum of TierFootprint::heldBytes over the sleeping tasks
  uint64_t cgroupBytes = 0;      // ... and of their cgroups' charges
  bool cgroupMeasured = false;
  uint64_t hostUsedBytes = 0;    // MemTotal - MemAvailable, asleep minus before the start
  unsigned answered = 0;         // requests answered 200 when woken in random order
  std::vector<double> wakeMs;    // those requests
};

struct TierResult {
  std::string name;              // "light", "deep", "deep + standby"
  std::vector<TierWake> wakes;
  std::vector<TierFootprint> footprints;
  TierDensity density;
};

struct TierResults {
  std::vector<TierResult> tiers;
  std::vector<std::string> failures;  // requests that got no 200, with why
};

// c.tierCycles measured wakes per tier and, unless c.densityTasks is 0, the
// density run; agents' pins and state removed at the end.
Result<TierResults> runTierScenarios(const BenchConfig& c);

}  // namespace s2z::bench
