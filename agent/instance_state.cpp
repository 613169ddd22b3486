#include "agent/instance.h"

namespace s2z::agent {

const char* instanceStateName(InstanceState s) {
  switch (s) {
    case InstanceState::kBooting: return "booting";
    case InstanceState::kRunning: return "running";
    case InstanceState::kSnapshotting: return "snapshotting";
    case InstanceState::kSleeping: return "sleeping";
    case InstanceState::kWaking: return "waking";
    case InstanceState::kStopping: return "stopping";
    case InstanceState::kExited: return "exited";
  }
  return "unknown";
}

const char* sleepTierName(SleepTier t) {
  switch (t) {
    case SleepTier::kLight: return "light";
    case SleepTier::kDeep: return "deep";
  }
  return "unknown";
}

}  // namespace s2z::agent
