// The agent's own log: lines "s2z-agent: ..." on /dev/console, which the host
// keeps as the VM's console log. Used sparingly: boot milestones and failures.
#pragma once

#include <string_view>

namespace s2z::guest {

// Writes one line to fd 2 (the console once boot has attached stdio).
// Never fails: a log that cannot be written is dropped.
void logLine(std::string_view message);

}  // namespace s2z::guest
