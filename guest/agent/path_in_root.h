// Paths of the task's root filesystem seen as the workload sees them: the
// agent runs outside the chroot, so an absolute symlink or ".." in the image
// must not lead it out of the root.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::guest {

// openat2(RESOLVE_IN_ROOT) of `path` relative to rootFd, with O_PATH and
// O_CLOEXEC added to flags. Invalid on failure (errno set).
UniqueFd openInRoot(int rootFd, const std::string& path, uint64_t flags);

// Creates the directory `path` (absolute, inside the root) and its missing
// parents (mode 0755), resolving each existing component inside the root.
// Returns an O_PATH fd of it.
Result<UniqueFd> makeDirsInRoot(int rootFd, const std::string& path);

}  // namespace s2z::guest
