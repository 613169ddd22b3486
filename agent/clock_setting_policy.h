// How hard a wake tries to set the guest's clock, through either channel
// (our guest agent, or qemu-guest-agent for a guest without it). Right after
// a restore the guest's round trips are the slowest (a cold TCG translation
// cache, the workload answering the request that woke it), so the first
// setting may be off by a round trip's asymmetry: it is repeated with a
// corrected lead while the error left is larger than kClockGoodEnoughMs.
#pragma once

namespace s2z::agent {

inline constexpr int kClockSetAttempts = 3;
inline constexpr double kClockGoodEnoughMs = 2.0;

}  // namespace s2z::agent
