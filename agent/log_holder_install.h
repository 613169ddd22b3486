// Puts the embedded log holder program (log_holder_image.h) where it can be
// executed: <state_dir>/bin/s2z-log-holder-<hash of its bytes>, written once
// (temp file, fsync, rename) and shared by every holder process, so they all
// map the same page cache and each costs only its own few pages.
#pragma once

#include <filesystem>
#include <string_view>

#include "common/result.h"

namespace s2z::agent {

// Returns the path of the installed program; a file of the same name and
// size already there is reused (the name carries the content's hash).
// Fails with kSystem when the directory or file cannot be written.
Result<std::filesystem::path> installLogHolder(const std::filesystem::path& stateDir,
                                               std::string_view image);

}  // namespace s2z::agent
