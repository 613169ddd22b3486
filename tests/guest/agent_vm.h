// One agent-guest VM for a test: QEMU (TCG, microvm) with exactly the devices
// the host side uses (agent/ launches the same set), in a throw-away run dir:
//   virtio-serial: s2z.agent (unix socket <dir>/agent.sock, QEMU listens),
//                  s2z.stdout / s2z.stderr (files <dir>/stdout.log, stderr.log)
//   virtio-blk:    s2z-root (the test rootfs, read-only), s2z-scratch (a fresh
//                  sparse 512 MiB ext4 in <dir>)
//   console:       <dir>/console.log
// The destructor kills QEMU if it still runs and removes the run dir.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace s2z::guest::testing {

// The agent guest (vmlinuz, initrd.img) and the test rootfs image; set by
// CMake, overridable with S2Z_AGENT_GUEST_DIR / S2Z_ROOTFS_IMAGE.
std::filesystem::path agentGuestDir();
std::filesystem::path rootfsImage();

// Additions to the standard VM, for cases that need more (e.g. a NIC).
struct AgentVmExtras {
  std::vector<std::string> qemuArgs;
  std::string cmdline;  // appended to the kernel command line
};

class AgentVm {
 public:
  // Creates the run dir and scratch disk and starts QEMU; throws
  // std::runtime_error when that fails.
  explicit AgentVm(const AgentVmExtras& extras = {});
  ~AgentVm();
  AgentVm(const AgentVm&) = delete;
  AgentVm& operator=(const AgentVm&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path agentSocket() const { return dir_ / "agent.sock"; }
  std::string stdoutText() const { return read("stdout.log"); }
  std::string stderrText() const { return read("stderr.log"); }
  std::string consoleText() const { return read("console.log"); }
  std::chrono::steady_clock::time_point startedAt() const { return startedAt_; }

  // Waits for QEMU to exit (the guest powered off; -no-reboot). False on timeout.
  bool waitExit(std::chrono::milliseconds timeout);
  int exitStatus() const { return status_; }  // waitpid status once exited

 private:
  std::string read(const char* name) const;

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int status_ = -1;
  std::chrono::steady_clock::time_point startedAt_;
};

}  // namespace s2z::guest::testing
