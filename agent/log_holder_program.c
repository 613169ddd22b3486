/* s2z-log-holder: keeps one task's log FIFOs open while no plugin runs
 * (agent/task_output.h). Started as `s2z-log-holder <task>` with the task's
 * stdout and stderr write ends as fds 3 and 4, it holds them and does
 * nothing else until it is killed (the task exited); it outlives the plugin
 * that started it.
 *
 * A program of its own, not the plugin binary run with a verb: the plugin
 * links gRPC and protobuf, and loading them costs ~8 MiB of private memory
 * per process before main() runs; this static program costs ~44 KiB. The
 * plugin carries it embedded (log_holder_image.cpp) and writes it once into
 * its state dir (log_holder_install.h), so users still install one binary. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2 || fcntl(3, F_GETFD) < 0 || fcntl(4, F_GETFD) < 0) {
    fprintf(stderr, "usage: %s <task> with the task's log FIFOs as fds 3 and 4\n", argv[0]);
    return 2;
  }
  /* Shown by ps/top (a program run from a file in the state dir). */
  prctl(PR_SET_NAME, "s2z-log-holder");
  /* Only a kill from the agent (or an operator) ends it: it never writes,
   * and has no terminal whose hangup or ^C should count. */
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  for (;;) pause();
}
