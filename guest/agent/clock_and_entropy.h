// The guest's wall clock and entropy pool. Neither runs while the VM sleeps:
// after a restore the clock is behind by the sleep and the RNG state is the
// snapshot's (a clone would repeat it), so the host sets both on every wake.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace s2z::guest {

// clock_settime(CLOCK_REALTIME).
Result<void> setWallClock(int64_t sec, int64_t usec);

struct WallClock {
  int64_t sec = 0;
  int64_t usec = 0;
};
WallClock wallClock();

// Mixes data into the kernel pool and credits it (RNDADDENTROPY on
// /dev/random, 8 bits per byte like kata-agent).
Result<void> addEntropy(const std::string& data);

}  // namespace s2z::guest
