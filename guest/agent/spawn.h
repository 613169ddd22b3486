// Starting a process inside the task's root filesystem: the workload and the
// commands exec'd beside it share every step between fork and execve.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "guest/agent/launch_plan.h"

namespace s2z::guest {

struct SpawnStdio {
  int in = -1;   // -1: /dev/null
  int out = -1;  // required
  int err = -1;  // required
  // `in` is a terminal's slave end: it becomes the controlling terminal of
  // the new session (tty exec).
  bool controllingTty = false;
};

// Forks a child that starts a new session, joins the workload cgroup, resets
// its OOM score, takes the given stdio, chroots into rootDir, changes to the
// plan's working directory and user, restores default signal dispositions
// and an empty mask (the agent blocks the signals its signalfd reads), and
// execs the plan. Returns the pid once execve has succeeded; a failure in the
// child ("chdir to the working directory: ...") is the error, carried back
// over a CLOEXEC pipe, and the child has been reaped.
Result<pid_t> spawnInRoot(const std::string& rootDir, const LaunchPlan& plan, const SpawnStdio& stdio);

}  // namespace s2z::guest
