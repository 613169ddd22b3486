#include "agent/console_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

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

std::string ConsoleLog::lastLines(int lines) const {
  constexpr off_t kWindow = 4096;
  UniqueFd reader(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!reader || ::fstat(reader.get(), &st) != 0 || st.st_size == 0) return "";
  off_t from = st.st_size > kWindow ? st.st_size - kWindow : 0;
  std::string text(static_cast<size_t>(st.st_size - from), '\0');
  ssize_t n = ::pread(reader.get(), text.data(), text.size(), from);
  if (n <= 0) return "";
  text.resize(static_cast<size_t>(n));
  std::vector<std::string> found;
  size_t end = text.size();
  while (end > 0 && static_cast<int>(found.size()) < lines) {
    size_t start = text.rfind('\n', end - 1);
    size_t begin = start == std::string::npos ? 0 : start + 1;
    std::string line = text.substr(begin, end - begin);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    // A line cut by the window's start is not shown.
    if (!line.empty() && (start != std::string::npos || from == 0)) found.push_back(line);
    if (start == std::string::npos) break;
    end = start;
  }
  std::string out;
  for (auto it = found.rbegin(); it != found.rend(); ++it) out += (out.empty() ? "" : " / ") + *it;
  return out;
}

}  // namespace s2z::agent
