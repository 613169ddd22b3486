// A snapshot's manifest (manifest.json in the snapshot dir): whose snapshot
// it is, which sleep made it (the generation), and what each of its files
// looked like when it was made durable. Checked before every restore, so a
// corrupt, truncated, stale or foreign snapshot is never resumed.
//
// What is checked, and why not more:
// - Device state files (QEMU's ~60 KB migration stream, Cloud Hypervisor's
//   config/state JSON) are checksummed in full (CRC-32): a few hundred
//   microseconds per restore.
// - Guest RAM (the run dir's guest-ram, or the memory-ranges dump of a Cloud
//   Hypervisor snapshot an older plugin took of anonymous RAM) is hundreds of
//   MiB that a deep sleep has dropped from the page cache; reading it all back
//   to checksum it would cost more than the restore itself. It is bound by
//   identity instead: size, inode and ctime. The ctime moves on any write to
//   the file (a guest writing through its shared mapping, a copy over it, a
//   truncation) and on markRamInUse(), which the restore calls before the
//   guest runs again. So a RAM file that ran past its snapshot, or one from
//   another task or another sleep, no longer matches. Linux 6.13+ gives ctime
//   fine-grained values once it has been read (multigrain timestamps), so two
//   changes a tick apart still differ.
// - The manifest itself carries a CRC-32 of its own fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace s2z::vmm {

// Who owns a snapshot and which sleep of theirs made it: the owner is the
// task id, the generation counts the task's deep sleeps from 1. Generation 0
// means "made before manifests existed": restore checks nothing then.
struct SnapshotStamp {
  std::string owner;
  uint64_t generation = 0;
};

struct ManifestFile {
  // Relative to the snapshot dir, or absolute (guest-ram lives in the run dir).
  std::filesystem::path path;
  uint64_t size = 0;
  std::optional<uint32_t> crc32;  // files checked by content
  uint64_t inode = 0;             // files checked by identity (crc32 empty)
  int64_t ctimeNs = 0;
};

struct SnapshotManifest {
  SnapshotStamp stamp;
  std::vector<ManifestFile> files;
};

constexpr char kManifestFile[] = "manifest.json";

// Describes path (relative to dir, or absolute) as it is now: by content
// (CRC-32 of the whole file) or by identity (size, inode, ctime).
enum class FileCheck { kContent, kIdentity };
Result<ManifestFile> describeSnapshotFile(const std::filesystem::path& dir,
                                          const std::filesystem::path& path, FileCheck check);

// manifest.json's text for a manifest, its own checksum included; and back.
// Decoding fails with kDataLoss and the reason ("does not parse", "is
// corrupt", "has an unknown format", a missing or mistyped field) for any
// text that is not a whole, intact manifest of this format; a manifest is a
// few hundred bytes, so text over kManifestMaxBytes or nested deeper than
// the format is refused before it is parsed further.
constexpr size_t kManifestMaxBytes = 64 * 1024;
std::string encodeSnapshotManifest(const SnapshotManifest& manifest);
Result<SnapshotManifest> decodeSnapshotManifest(std::string_view text);

// Writes dir/manifest.json durably: a temp file, fsync, rename, fsync of dir.
// On failure (disk full, ...) no manifest.json.tmp is left behind.
Result<void> writeSnapshotManifest(const std::filesystem::path& dir, const SnapshotManifest& manifest);

// kNotFound when there is none; kDataLoss when it does not parse or its own
// checksum fails.
Result<SnapshotManifest> readSnapshotManifest(const std::filesystem::path& dir);

// The snapshot in dir is expected's, and every file still is what its
// manifest says. Errors: kDataLoss naming the first difference (foreign,
// stale, truncated, corrupt, RAM changed since); kNotFound for no manifest.
// With expected.generation 0 (a snapshot older than manifests) ok.
Result<void> verifySnapshot(const std::filesystem::path& dir, const SnapshotStamp& expected);

// The guest is about to run on this RAM file again: moves its ctime, so the
// snapshot that was just restored can never be paired with it again.
Result<void> markRamInUse(const std::filesystem::path& ramFile);

}  // namespace s2z::vmm
