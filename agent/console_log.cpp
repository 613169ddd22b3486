#include "agent/console_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace s2z::agent {

Result<ConsoleLog> ConsoleLog::open(const std::filesystem::path& path, uint64_t limitBytes) {
  // Write-only: QEMU's /dev/fdset/N open (O_WRONLY) matches an fd of the
  // set only if its access mode is the same.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return systemError("open " + path.string());
  return ConsoleLog(path, std::move(fd), limitBytes);
}

void ConsoleLog::trim() {
  struct stat st {};
  if (!fd_ || ::fstat(fd_.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) <= limit_) return;
  // Keep the newest half: read it, then rewrite the file from the start.
  off_t keep = static_cast<off_t>(limit_ / 2);
  std::string tail(static_cast<size_t>(keep), '\0');
  UniqueFd reader(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!reader) return;
  ssize_t n = ::pread(reader.get(), tail.data(), tail.size(), st.st_size - keep);
  if (n <= 0) return;
  if (::ftruncate(fd_.get(), 0) != 0) return;
  (void)::write(fd_.get(), tail.data(), static_cast<size_t>(n));  // O_APPEND: at the new end
}

}  // namespace s2z::agent
