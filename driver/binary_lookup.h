// Finds an executable the way a shell does: a name containing '/' is used as
// given, a bare name is searched in PATH.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace s2z::driver {

// label names the binary in messages ("qemu"). Fails with kNotFound:
// `qemu binary "qemu-system-x86_64" not found in PATH` or
// `qemu binary "/opt/q" not found or not executable`.
Result<std::filesystem::path> findExecutable(std::string_view label, const std::string& nameOrPath,
                                             std::string_view pathEnv);

// The PATH of this process (empty if unset).
std::string currentPathEnv();

}  // namespace s2z::driver
