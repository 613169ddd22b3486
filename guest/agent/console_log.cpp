#include "guest/agent/console_log.h"

#include <sys/uio.h>
#include <unistd.h>

namespace s2z::guest {

void logLine(std::string_view message) {
  static constexpr char kPrefix[] = "s2z-agent: ";
  iovec parts[3] = {
      {const_cast<char*>(kPrefix), sizeof(kPrefix) - 1},
      {const_cast<char*>(message.data()), message.size()},
      {const_cast<char*>("\n"), 1},
  };
  // One writev: the line stays whole even when the kernel prints in between.
  (void)::writev(STDERR_FILENO, parts, 3);
}

}  // namespace s2z::guest
