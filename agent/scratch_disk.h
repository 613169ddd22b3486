// The per-task writable disk of a guest-agent task: a sparse file formatted
// ext4 by Debian's mke2fs, which the guest stacks on the read-only root with
// overlayfs. Block devices only, never a shared filesystem: a snapshot must
// hold everything the guest sees.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/result.h"

namespace s2z::agent {

// Creates `path` (owner-only: it holds whatever the task writes) of `mib`
// MiB, sparse, and formats it. On failure nothing is left at `path`.
Result<void> createScratchDisk(const std::filesystem::path& path, uint64_t mib);

}  // namespace s2z::agent
