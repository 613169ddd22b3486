// After every wake the guest's wall clock is where the snapshot froze it
// (design.md: 31 s behind after a 31 s sleep) and its RNG state is a copy of
// the one it had before. The guest agent fixes both, as kata's
// SetGuestDateTime and ReseedRandomDev do.
#pragma once

#include <chrono>
#include <string>

#include "agent/guest_channel.h"
#include "common/result.h"

namespace s2z::agent {

struct ClockCorrection {
  double offsetBeforeMs = 0;  // guest minus host before the correction (how far it lagged)
  double errorAfterMs = 0;    // guest minus host right after it
  double uncertaintyMs = 0;   // half the measuring round trip
};

// Sets the guest's CLOCK_REALTIME from the host's (SetGuestDateTime, again
// with a corrected lead while the error left is over 2 ms, at most three
// round trips) and measures the error left. Needs a connected channel; fails
// with the channel's error (kTimeout, kUnavailable) or the guest's
// (kFailedPrecondition), wrapped in "set guest clock".
Result<ClockCorrection> correctGuestClock(GuestChannel& channel, std::chrono::milliseconds timeout);

// Mixes 64 bytes of the host's randomness into the guest's pool and credits
// them (ReseedRandomDev); waits for the guest's answer. Fails as above,
// wrapped in "reseed guest RNG".
Result<void> reseedGuestRng(GuestChannel& channel, std::chrono::milliseconds timeout);

}  // namespace s2z::agent
