// Builds the QEMU argv for one VM (design.md's measured command line): microvm,
// serial console to an inherited fd, fd-backed tap NIC, QMP socket, file-backed guest RAM.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vmm/vmm.h"

namespace s2z::vmm::qemu {

// The child fd number the tap fd is passed as (`-netdev tap,fd=4`).
inline constexpr int kTapChildFd = 4;
// The console fd: child fd 5, in QEMU's fd set 1 (`-add-fd`), which the serial
// chardev opens as /dev/fdset/1 (a dup of our write end, no open of the FIFO).
inline constexpr int kConsoleChildFd = 5;
inline constexpr int kConsoleFdSet = 1;
// The guest agent's output ports, the same way: child fds 6 and 7, sets 2 and 3.
inline constexpr int kStdoutChildFd = 6;
inline constexpr int kStdoutFdSet = 2;
inline constexpr int kStderrChildFd = 7;
inline constexpr int kStderrFdSet = 3;
// QMP's listening socket, bound by the plugin at qmpSocket before the start
// and inherited as child fd 8: the plugin connects at once and the greeting
// comes when QEMU is ready, instead of polling for the path to appear.
inline constexpr int kQmpChildFd = 8;
// TCG's translation buffer (`-accel tcg,tb-size=`), MiB.
inline constexpr unsigned kTcgTranslationBufferMib = 32;

struct QemuPaths {
  std::filesystem::path qmpSocket;  // <runDir>/qmp.sock
  std::filesystem::path guestRam;   // <runDir>/guest-ram
  std::filesystem::path log;        // <runDir>/qemu.log (QEMU's stdout/stderr)
};
QemuPaths qemuPaths(const std::filesystem::path& runDir);

struct QemuLaunch {
  bool incoming = false;    // standby/restore: add -S -incoming defer
  uint64_t tscKhz = 0;      // TCG only: tsc_early_khz for the guest; 0 = don't add
};

// The guest command line QEMU gets: config.cmdline plus, under TCG,
// tsc_early_khz and no_timer_check unless the caller already set them.
std::string guestCmdline(const VmConfig& config, uint64_t tscKhz);

// argv (argv[0] = config.binary). The QMP socket path is given relative to
// runDir when the absolute one would not fit a unix socket address, so QEMU
// must be started with runDir as its working directory; so is the agent socket.
std::vector<std::string> buildQemuArgv(const VmConfig& config, const QemuLaunch& launch);

// Host TSC frequency in kHz for tsc_early_khz (a TCG guest reads the host's
// TSC): from CPUID when the CPU or hypervisor reports it, else the kernel's
// tsc_freq_khz when exported, else "cpu MHz" from /proc/cpuinfo; 0 if unknown.
uint64_t hostTscKhz();

}  // namespace s2z::vmm::qemu
