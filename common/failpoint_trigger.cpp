// The test plugin's failpoints (see failpoint.h): S2Z_FAILPOINT names the one
// that kills the process. SIGKILL, not abort: nothing may run on the way out,
// as when the OOM killer or an operator's kill -9 ends the plugin.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/failpoint.h"

namespace s2z {

void failpoint(const char* name) {
  const char* armed = std::getenv("S2Z_FAILPOINT");
  if (!armed || std::strcmp(armed, name) != 0) return;
  std::string line = std::string("s2z failpoint ") + name + ": killing the plugin\n";
  (void)::write(STDERR_FILENO, line.data(), line.size());
  ::raise(SIGKILL);
}

}  // namespace s2z
