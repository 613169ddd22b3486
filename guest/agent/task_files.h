// The task's directories inside the guest: /local, /secrets (a tmpfs) and
// /alloc in the workload's root (made by RootFilesystem::mount), written entry by entry by the host
// (CopyFile, RemovePath), since no filesystem is shared with the host (it
// would break snapshots). Nothing outside those three is ever touched: a path
// that leaves them (.., a symlink on the way) is refused.
#pragma once

#include <string>

#include "common/result.h"
#include "s2z/agent/v1/agent.pb.h"

namespace s2z::guest {

// One CopyFile request, under `root`.
Result<void> copyTaskFile(const std::string& root, const agent::v1::CopyFile& file);

// One RemovePath request, under `root`; a missing path is fine.
Result<void> removeTaskPath(const std::string& root, const std::string& path);

}  // namespace s2z::guest
