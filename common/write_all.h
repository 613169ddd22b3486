// Writing a whole buffer to an fd: write(2) may write less than asked (and
// EINTR), so every caller that must not leave half a file loops the same way.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace s2z {

// All of bytes, or kSystem naming `what` (errno: ENOSPC on a full disk, ...).
Result<void> writeAll(int fd, std::string_view bytes, const std::string& what);

}  // namespace s2z
