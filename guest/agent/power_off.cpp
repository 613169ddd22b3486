#include "guest/agent/power_off.h"

#include <sys/reboot.h>
#include <unistd.h>

#include <string>

#include "guest/agent/console_log.h"

namespace s2z::guest {

void powerOff(std::string_view reason) {
  logLine(std::string("power off: ") + std::string(reason));
  ::sync();
  ::reboot(RB_POWER_OFF);
  // reboot() only fails without CAP_SYS_BOOT (not PID 1 in a VM); stay alive
  // rather than let PID 1 exit and panic the kernel.
  for (;;) ::pause();
}

}  // namespace s2z::guest
