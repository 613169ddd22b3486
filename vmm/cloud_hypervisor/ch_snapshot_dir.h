// The snapshot directory's life: written under a temporary sibling name by the
// VMM, made durable (fsync of every file and of the directories), then renamed
// into place so a reader never sees half a snapshot.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/result.h"
#include "vmm/snapshot_manifest.h"

namespace s2z::vmm::ch {

// Creates an empty "<finalDir>.tmp" next to finalDir (same filesystem, so the
// rename is atomic), removing a leftover one. kSystem on failure.
Result<std::filesystem::path> prepareTempDir(const std::filesystem::path& finalDir);

// fsyncs every file in tempDir and tempDir itself, replaces finalDir with it
// (an older snapshot is moved aside first and removed after), fsyncs the
// parent. Returns the total size of the files. kNotFound when the VMM wrote
// no config.json/state.json; kSystem on I/O errors.
Result<uint64_t> commitSnapshotDir(const std::filesystem::path& tempDir,
                                   const std::filesystem::path& finalDir);

// Writes dir's manifest (vmm/snapshot_manifest.h) stamped with stamp: the
// JSON files checked by content; guest RAM by identity, both the RAM file
// outside dir (ramFile; empty for none) and a memory-ranges dump in it (what
// the VMM writes for anonymous RAM, as an older plugin's VMs have).
Result<void> writeManifestFor(const std::filesystem::path& dir, const SnapshotStamp& stamp,
                              const std::filesystem::path& ramFile);

// kNotFound unless dir holds a snapshot (config.json and state.json).
Result<void> checkSnapshotDir(const std::filesystem::path& dir);

// Best-effort recursive removal, for cleanup paths.
void removeQuietly(const std::filesystem::path& path);

}  // namespace s2z::vmm::ch
