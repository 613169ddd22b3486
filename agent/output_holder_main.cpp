#include "agent/output_holder_main.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>

#include "agent/task_output.h"

namespace s2z::agent {

int runOutputHolder(int argc, char** argv) {
  if (argc < 3 || ::fcntl(kHolderStdoutFd, F_GETFD) < 0 || ::fcntl(kHolderStderrFd, F_GETFD) < 0) {
    std::fprintf(stderr, "usage: %s %s <task> with the task's log FIFOs as fds %d and %d\n",
                 argv[0], kOutputHolderVerb, kHolderStdoutFd, kHolderStderrFd);
    return 2;
  }
  // Shown by ps/top instead of the plugin's name.
  ::prctl(PR_SET_NAME, "s2z-log-holder");
  // Only a kill from the agent (or an operator) ends it; it never writes, and
  // has no terminal whose hangup or ^C should count.
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  for (;;) ::pause();
}

}  // namespace s2z::agent
