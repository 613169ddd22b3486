// The only way the agent ends. PID 1 must never exit (the kernel panics), so a
// fatal error and the normal end of the workload both power the VM off; QEMU
// runs with -no-reboot and exits.
#pragma once

#include <string_view>

namespace s2z::guest {

// Logs why, syncs filesystems and calls reboot(RB_POWER_OFF). Does not return.
[[noreturn]] void powerOff(std::string_view reason);

}  // namespace s2z::guest
