#include "guest/agent/early_boot.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "guest/agent/file_io.h"

namespace s2z::guest {

void attachStdioToConsole() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) continue;
    int console = ::open("/dev/console", O_RDWR | O_NOCTTY);
    if (console < 0) return;  // nothing to attach to yet
    if (console != fd) {
      ::dup2(console, fd);
      ::close(console);
    }
  }
}

namespace {

Result<void> mountOne(const char* source, const char* target, const char* type,
                      unsigned long flags, const char* options) {
  ::mkdir(target, 0755);
  if (::mount(source, target, type, flags, options) != 0 && errno != EBUSY) {
    return systemError(std::string("mount ") + type + " on " + target);
  }
  return okResult();
}

}  // namespace

Result<void> mountKernelFilesystems() {
  constexpr unsigned long kNoExecSuid = MS_NOSUID | MS_NOEXEC | MS_NODEV;
  S2Z_TRY(mountOne("proc", "/proc", "proc", kNoExecSuid, nullptr), "boot");
  S2Z_TRY(mountOne("sysfs", "/sys", "sysfs", kNoExecSuid, nullptr), "boot");
  S2Z_TRY(mountOne("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"), "boot");
  S2Z_TRY(mountOne("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), "boot");
  S2Z_TRY(mountOne("cgroup2", "/sys/fs/cgroup", "cgroup2", kNoExecSuid, nullptr), "boot");
  return okResult();
}

Result<void> setOomScoreAdj(int value) {
  return writeFile("/proc/self/oom_score_adj", std::to_string(value));
}

}  // namespace s2z::guest
