// The instance state machine (style.md, VM lifecycle): the state changes only
// through the named transitions below, each of which checks the state it
// starts from. A transition attempted in the wrong state fails with
// kFailedPrecondition naming the operation and the current state
// ("sleep: instance is exited"). Not thread-safe: the owner locks.
#pragma once

#include <initializer_list>
#include <string>

#include "agent/instance.h"
#include "common/result.h"

namespace s2z::agent {

class Lifecycle {
 public:
  explicit Lifecycle(InstanceState initial = InstanceState::kBooting) : state_(initial) {}

  InstanceState state() const { return state_; }

  // Ok when the state is one of `allowed`; else the typed error for `operation`.
  Result<void> require(const char* operation, std::initializer_list<InstanceState> allowed) const;

  // Booting -> Running (boot finished).
  Result<void> booted() { return move("boot", {InstanceState::kBooting}, InstanceState::kRunning); }
  // Running -> Snapshotting.
  Result<void> beginSleep() {
    return move("sleep", {InstanceState::kRunning}, InstanceState::kSnapshotting);
  }
  // Snapshotting -> Sleeping (snapshot written, VMM gone).
  Result<void> slept() {
    return move("finish sleep", {InstanceState::kSnapshotting}, InstanceState::kSleeping);
  }
  // Snapshotting -> Running (snapshot failed, guest resumed).
  Result<void> sleepFailed() {
    return move("abort sleep", {InstanceState::kSnapshotting}, InstanceState::kRunning);
  }
  // Sleeping -> Snapshotting (a light sleep going deep).
  Result<void> beginDeepen() {
    return move("sleep deeper", {InstanceState::kSleeping}, InstanceState::kSnapshotting);
  }
  // Snapshotting -> Sleeping (light still: the snapshot failed, the guest stays paused).
  Result<void> deepenFailed() {
    return move("abort sleeping deeper", {InstanceState::kSnapshotting}, InstanceState::kSleeping);
  }
  // Sleeping -> Waking.
  Result<void> beginWake() {
    return move("wake", {InstanceState::kSleeping}, InstanceState::kWaking);
  }
  // Waking -> Running (restored or cold-booted).
  Result<void> woke() { return move("finish wake", {InstanceState::kWaking}, InstanceState::kRunning); }
  // Any live state -> Stopping (Stopping again: a retry after a failed stop).
  Result<void> beginStop() {
    return move("stop",
                {InstanceState::kBooting, InstanceState::kRunning, InstanceState::kSleeping,
                 InstanceState::kWaking, InstanceState::kSnapshotting, InstanceState::kStopping},
                InstanceState::kStopping);
  }
  // Anything but Exited -> Exited (stopped, crashed, or failed to wake).
  Result<void> exited() {
    return move("exit",
                {InstanceState::kBooting, InstanceState::kRunning, InstanceState::kSnapshotting,
                 InstanceState::kSleeping, InstanceState::kWaking, InstanceState::kStopping},
                InstanceState::kExited);
  }

 private:
  Result<void> move(const char* operation, std::initializer_list<InstanceState> from,
                    InstanceState to);

  InstanceState state_;
};

}  // namespace s2z::agent
