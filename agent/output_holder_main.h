// The log FIFO holder's whole program (agent/task_output.h): the plugin binary
// started as `<binary> hold-task-output <task>` with the task's stdout and
// stderr write ends as fds 3 and 4. It keeps them open and does nothing else
// until it is killed (the task exited) — it outlives the plugin that started it.
#pragma once

namespace s2z::agent {

inline constexpr const char* kOutputHolderVerb = "hold-task-output";

// Runs the holder; returns only on a usage error (exit code 2).
int runOutputHolder(int argc, char** argv);

}  // namespace s2z::agent
