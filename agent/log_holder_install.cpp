#include "agent/log_holder_install.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

#include "common/unique_fd.h"
#include "common/write_all.h"

namespace s2z::agent {
namespace {

// FNV-1a: names versions apart, not a security check (the dir is root's).
std::string hashName(std::string_view bytes) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

Result<std::filesystem::path> installLogHolder(const std::filesystem::path& stateDir,
                                               std::string_view image) {
  const auto dir = stateDir / "bin";
  const auto target = dir / ("s2z-log-holder-" + hashName(image));
  std::error_code ec;
  if (std::filesystem::file_size(target, ec) == image.size() && !ec) return target;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "create " + dir.string()};
  ::chmod(dir.c_str(), 0700);
  const auto temp = dir / (target.filename().string() + ".tmp." + std::to_string(::getpid()));
  {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700));
    if (!fd) return systemError("create " + temp.string());
    auto written = writeAll(fd.get(), image, temp.string());
    if (written.ok() && ::fsync(fd.get()) != 0) written = systemError("fsync " + temp.string());
    if (!written.ok()) {
      ::unlink(temp.c_str());
      return written.error();
    }
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    Error e = systemError("rename " + temp.string());
    ::unlink(temp.c_str());
    return e;
  }
  return target;
}

}  // namespace s2z::agent
