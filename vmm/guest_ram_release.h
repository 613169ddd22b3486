// Pushing a guest's RAM out of host memory while it sleeps. Guest RAM is a
// shared file in the run dir (vmm/guest_ram_file.h), so once its
// dirty pages are written back the kernel can drop them like any clean file
// page, and the guest faults them back in from the file when it runs again.
//
// Kernel facts (Linux 6.18, measured on a 256 MiB TCG guest holding 140 MiB):
// - MADV_PAGEOUT (through process_madvise on the VMM's pidfd) reclaims only
//   clean file pages: reclaim outside kswapd does not write dirty file pages
//   back, so fdatasync comes first (~100 ms for 140 MiB here).
// - After the pageout the pages are no longer mapped by the VMM (its RSS
//   215 -> 91 MiB) but stay in the page cache, clean and unmapped: the first
//   memory the kernel reclaims under pressure, without any I/O, and what a
//   resumed guest maps back with minor faults (request to a resumed guest
//   answered in 17 ms, wake 3.4 ms).
// - POSIX_FADV_DONTNEED then drops them (it skips mapped pages, so it must
//   come after the pageout): page cache 140 -> 0 MiB. A resumed guest then
//   reads its working set back from disk: the same request took 83 ms.
//   So the light tier keeps the clean cache and the deep tier, whose restore
//   reads from the file anyway, drops it.
// - What stays in the VMM is its own memory: anonymous (TCG's translation
//   buffer, device state) which, without swap, nothing can push out.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>

#include "common/result.h"

namespace s2z::vmm {

struct RamRelease {
  uint64_t cachedBefore = 0;  // bytes of the RAM file in the page cache before
  uint64_t cachedAfter = 0;   // ... and after
  uint64_t mappedBefore = 0;  // file pages the VMM had mapped (RssFile) before
  uint64_t mappedAfter = 0;   // ... and after (pageout only)
  uint64_t dropped() const { return cachedBefore > cachedAfter ? cachedBefore - cachedAfter : 0; }
  uint64_t unmapped() const { return mappedBefore > mappedAfter ? mappedBefore - mappedAfter : 0; }
};

// What happens to the VMM's mapping of the RAM once it is written back.
enum class RamAdvice {
  kPageOut,  // MADV_PAGEOUT: unmapped, left in the page cache clean
  // Nothing: left mapped, clean, so reclaim can still take it without I/O
  // (it unmaps clean file pages under pressure); a resumed guest reads it
  // without a fault and faults only on its first write to a page (write-back
  // made the pages read-only; ~2.3 ms of a 9-10 ms wake, measured. Skipping
  // the write-back would not save them: the kernel's flusher writes dirty
  // pages back after dirty_expire_centisecs, 30 s, and write-protects them
  // the same way). Not MADV_COLD, which would have kept it mapped
  // but first in line for reclaim: on this kernel it unmapped all 126 MiB of
  // QEMU's mapping (agent/README.md, "Sleep tiers").
  kKeepMapped,
};

// A paused VMM (pidfd, pid) keeps running but its mapping of ramFile is
// written back and advised as `advice` says (see above). The guest must not
// run meanwhile (its new writes would just be dirty again).
Result<RamRelease> releaseGuestRam(int pidfd, pid_t pid, const std::filesystem::path& ramFile,
                                   RamAdvice advice);

// After the VMM exited: the RAM file is made durable and its page cache
// dropped, so a deep-sleeping task holds no host memory.
Result<RamRelease> dropGuestRamCache(const std::filesystem::path& ramFile);

// Bytes of the file at fd currently in the page cache (mincore).
Result<uint64_t> cachedBytes(int fd);

}  // namespace s2z::vmm
