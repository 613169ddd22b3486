#include "driver/binary_lookup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

namespace s2z::driver {
namespace {

bool isExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

Result<std::filesystem::path> findExecutable(std::string_view label, const std::string& nameOrPath,
                                             std::string_view pathEnv) {
  if (nameOrPath.find('/') != std::string::npos) {
    if (isExecutableFile(nameOrPath)) return std::filesystem::path(nameOrPath);
    return makeError(ErrorCode::kNotFound, fmt::format("{} binary \"{}\" not found or not executable",
                                                       label, nameOrPath));
  }
  size_t start = 0;
  while (start <= pathEnv.size()) {
    size_t end = pathEnv.find(':', start);
    if (end == std::string_view::npos) end = pathEnv.size();
    std::string_view dir = pathEnv.substr(start, end - start);
    // An empty PATH entry means the current directory, as in a shell.
    std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + nameOrPath;
    if (isExecutableFile(candidate)) return std::filesystem::path(candidate);
    start = end + 1;
  }
  return makeError(ErrorCode::kNotFound,
                   fmt::format("{} binary \"{}\" not found in PATH", label, nameOrPath));
}

std::string currentPathEnv() {
  const char* path = std::getenv("PATH");
  return path ? path : "";
}

}  // namespace s2z::driver
