#include "common/proc_cmdline.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/unique_fd.h"

namespace s2z {

std::string processCommandLine(pid_t pid) {
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC));
  std::string cmdline;
  if (!fd) return cmdline;
  char chunk[4096];
  for (ssize_t n; (n = ::read(fd.get(), chunk, sizeof chunk)) > 0;) cmdline.append(chunk, static_cast<size_t>(n));
  return cmdline;
}

}  // namespace s2z
