// Image tasks (issue 10's speed rows): converting the Debian test image to a
// disk, and StartTask -> first served request for an image task pulled from a
// real registry (tests/registry's docker-registry, in a namespace joined to
// the benchmark's), uncached and cached, beside a task given the same disk
// prebuilt; plus what a cached image adds to a start by itself, and the
// image task's wakes (as the guest-agent rows measure them).
#pragma once

#include <string>
#include <vector>

#include "bench/agent_scenarios.h"
#include "bench/bench_config.h"
#include "common/result.h"

namespace s2z::bench {

struct ImageStartSample {
  double ms = 0;         // prepareImage called (or start, prebuilt) -> full HTTP response
  double prepareMs = 0;  // of which prepareImage
};

struct ImageResults {
  // skopeo copy + umoci raw unpack + mke2fs of the test image's oci-archive.
  std::vector<double> convertSeconds;
  uint64_t archiveBytes = 0, unpackedBytes = 0, diskBytes = 0;
  std::vector<ImageStartSample> uncached, cached, prebuilt;
  std::vector<double> cachedPrepareMs;  // prepareImage of a registry tag already cached
  std::vector<WakeSample> wakes;        // the cached image task's deep sleep/wake cycles (with a standby)
  std::vector<WakeSample> lightWakes;   // ... and in light sleep, an image task's default tier
  std::vector<std::string> failures;
  std::string problem;  // why the rows are missing, if they are
};

// `netns`: the benchmark's network namespace (the registry's veth goes there).
// Uses c.agentGuestDir, c.rootfs's directory (debian-test.oci.tar) and
// c.workDir; a missing agent guest or image leaves `problem` set.
Result<ImageResults> runImageScenarios(const BenchConfig& c, const std::string& netns);

}  // namespace s2z::bench
