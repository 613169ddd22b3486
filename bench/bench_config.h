// What every benchmark scenario shares: where the guest and QEMU are, the
// scratch directory, and how many runs of each kind.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace s2z::bench {

struct BenchConfig {
  std::filesystem::path workDir;        // scratch (state dir, run dirs); removed at exit
  std::filesystem::path guestDir;       // vmlinuz + initrd.img
  // The agent guest (vmlinuz + initrd.img) and the Debian test root
  // filesystem its workload runs in; either empty or missing: no agent rows.
  std::filesystem::path agentGuestDir;
  std::filesystem::path rootfs;
  std::filesystem::path qemu = "/usr/bin/qemu-system-x86_64";
  std::string guestCmdline = "console=ttyS0 quiet panic=-1";
  uint16_t guestPort = 8080;
  std::chrono::milliseconds idleTimeout{1000};
  // After "Sleeping" the benchmark waits this long before its request, so the
  // request meets a settled sleeping VM (standby started), as a real one would.
  std::chrono::milliseconds settle{300};
  int cycles = 20;          // measured held-tap wakes through the agent
  int coldRuns = 3;         // cold boots through the agent
  int directCycles = 5;     // per mode (tap held / not held) with vmm + TapDevice
  int tierCycles = 10;      // measured wakes per sleep tier
  int densityTasks = 20;    // tasks asleep at once per tier; 0: no density run
  uint64_t densityMemoryMib = 128;
  unsigned tcRepeat = 1'000'000;
};

}  // namespace s2z::bench
