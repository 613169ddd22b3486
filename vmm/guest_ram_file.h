// The guest's RAM as a file: `guest-ram` in the task's run dir, mapped shared
// by the VMM (QEMU memory-backend-file,share=on; a Cloud Hypervisor memory
// zone with file and shared). Because the kernel keeps it, a snapshot holds
// only device state, a deep-sleeping guest's memory is this file on disk, and
// a restore maps it back on demand instead of copying a RAM dump.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/result.h"

namespace s2z::vmm {

std::filesystem::path guestRamPath(const std::filesystem::path& runDir);

// A fresh boot's RAM file at path, replacing any old one: owner-only (it is
// the guest's memory) and every block reserved, so a full disk is a clear
// start error rather than a SIGBUS that kills the VMM at the guest's first
// write to a page. Nothing is left behind on failure.
Result<void> createGuestRamFile(const std::filesystem::path& path, uint64_t bytes);

// The guest's writes so far are on disk (fdatasync), as a snapshot that
// names this file needs them.
Result<void> syncGuestRam(const std::filesystem::path& path);

}  // namespace s2z::vmm
