// A process's command line from /proc, read so that a process that goes
// away meanwhile is simply gone (scans of /proc race with exits).
#pragma once

#include <sys/types.h>

#include <string>

namespace s2z {

// /proc/<pid>/cmdline: the arguments, each ended by a NUL. Empty for a
// zombie or a process that is gone, also one reaped while it is read
// (read(2) says ESRCH then; an istreambuf_iterator would throw).
std::string processCommandLine(pid_t pid);

}  // namespace s2z
