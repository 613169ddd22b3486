// Snapshots that a restore refused (corrupt, truncated, stale, foreign:
// vmm/snapshot_manifest.h) are never resumed and never deleted on the spot:
// their files move to <state_dir>/quarantine/<time>-<task hash>/, owner-only,
// for whoever investigates. The quarantine keeps the newest entries across
// all tasks (plugin `quarantine_kept`, default kQuarantineKept): each may
// hold a whole guest's RAM, and a disk filled by old evidence would stop
// every task's sleep.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::agent {

inline constexpr size_t kQuarantineKept = 4;

// Moves each of files (a directory or a file; missing ones are skipped)
// into a new entry of quarantineRoot, by rename (same filesystem as the run
// dir), then removes the oldest entries beyond `kept` (at least 1: the new
// entry stays). Returns the new entry. kSystem when the entry cannot be made or a rename fails (the
// files not moved stay where they were).
Result<std::filesystem::path> quarantineSnapshot(const std::vector<std::filesystem::path>& files,
                                                 const std::filesystem::path& quarantineRoot,
                                                 const std::string& taskId, size_t kept = kQuarantineKept);

}  // namespace s2z::agent
