// Connecting to the unix sockets a VMM listens on (guest channels).
#pragma once

#include <filesystem>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

// A connected SOCK_STREAM (CLOEXEC). A path too long for sockaddr_un is
// reached through its directory's /proc/self/fd entry.
Result<UniqueFd> connectUnix(const std::filesystem::path& path);

}  // namespace s2z::agent
