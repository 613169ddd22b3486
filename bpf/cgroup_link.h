// A cgroup program attachment held by a bpf_link pinned in bpffs, so it
// survives plugin restarts without ever being attached twice.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/result.h"

struct bpf_program;

namespace s2z::bpf {

// Makes `prog` the program behind the link pinned at `pinPath` on the cgroup
// open as `cgroupFd` (whose id is `cgroupId`):
// - no pin: attaches a new link and pins it;
// - a pin on the same cgroup and hook (a previous plugin process): swaps the
//   link's program for `prog` in place (no window without a hook);
// - a pin on another cgroup, or a dead link: detaches it and starts over.
// Precondition: `prog` is loaded; the pin's directory exists on a bpffs.
Result<void> attachPinnedCgroupLink(bpf_program* prog, int cgroupFd, uint64_t cgroupId,
                                    const std::filesystem::path& pinPath);

// Detaches the link pinned at `pinPath` from its cgroup and unpins it; ok
// when there is no pin.
Result<void> detachPinnedCgroupLink(const std::filesystem::path& pinPath);

// The cgroup v2 id of an open cgroup directory (what link info reports).
Result<uint64_t> cgroupId(int cgroupFd, const std::filesystem::path& pathForErrors);

}  // namespace s2z::bpf
