// Unix stream sockets by path: the ones a VMM listens on (QMP, guest
// channels). A path too long for sockaddr_un (108 bytes: deep state dirs) is
// reached through its directory's /proc/self/fd entry, which is short.
#pragma once

#include <sys/un.h>

#include <filesystem>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z {

// Fills addr for path. A long path goes through its directory's fd, which
// `dir` keeps open until the connect or bind is done.
Result<void> unixSocketAddress(const std::filesystem::path& path, sockaddr_un& addr, UniqueFd& dir);

// A connected SOCK_STREAM (CLOEXEC).
Result<UniqueFd> connectUnix(const std::filesystem::path& path);

// A listening SOCK_STREAM bound at `path` (which must not exist), mode 0600,
// for a child to inherit: whoever connects before the child accepts waits in
// the backlog instead of polling for the path to appear.
Result<UniqueFd> listenUnix(const std::filesystem::path& path, int backlog);

}  // namespace s2z
