// The kernel console of a guest-agent task: a file in the run dir, not the
// task's logs (those are the workload's own stdout and stderr). Bounded:
// trim() keeps its newest half once it outgrows its limit. The VMM writes
// with O_APPEND, so cutting the file under it is safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

class ConsoleLog {
 public:
  static constexpr uint64_t kDefaultLimit = 1 << 20;

  // Opens (creates, owner-only) the file for appending.
  static Result<ConsoleLog> open(const std::filesystem::path& path,
                                 uint64_t limitBytes = kDefaultLimit);

  int fd() const { return fd_.get(); }
  // Cheap when under the limit (one fstat).
  void trim();
  // The console's last `lines` non-empty lines (from at most its last 4 KiB),
  // joined by " / " for an error message; "" when empty or unreadable.
  std::string lastLines(int lines) const;

 private:
  ConsoleLog(std::filesystem::path path, UniqueFd fd, uint64_t limit)
      : path_(std::move(path)), fd_(std::move(fd)), limit_(limit) {}

  std::filesystem::path path_;
  UniqueFd fd_;
  uint64_t limit_;
};

}  // namespace s2z::agent
