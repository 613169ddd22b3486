// Integration fixture for the QEMU backend: a throw-away network namespace that
// the calling thread enters (setns, so /sys stays as it is), a tap created and
// held inside it the way the driver holds one (its fd survives VMM exits), the
// host side 10.89.<n>.1/32 with a /32 route and a permanent neighbour entry for
// the VM, a run dir, and a tiny HTTP client whose sockets live in the netns.
// Everything is removed in the destructor, also when a test fails.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "vmm/vmm.h"
#include "vmm/vmm_process.h"

namespace s2z::vmm::testing {

struct HttpReply {
  int status = 0;  // 0: no reply (connect/read failed or timed out)
  std::string body;
  std::string error;
};

// One GET with Connection: close, from the current thread's netns.
HttpReply httpGet(const std::string& address, int port, const std::string& path,
                  std::chrono::milliseconds timeout);

// The guest kernel/initrd (S2Z_GUEST_DIR env, else the compile-time default).
std::filesystem::path guestDir();
bool guestAvailable();

class VmNet {
 public:
  // Creates namespace, tap, addresses and run dir; throws std::runtime_error
  // on failure (after undoing what was done).
  VmNet();
  ~VmNet();
  VmNet(const VmNet&) = delete;
  VmNet& operator=(const VmNet&) = delete;

  const std::string& vmAddress() const { return vmAddress_; }
  const std::string& mac() const { return mac_; }
  int tapFd() const { return tap_.get(); }
  const std::filesystem::path& runDir() const { return runDir_; }

  // A VmConfig for the test guest on this tap, TCG, 256 MiB, console to
  // consoleLog() (through an fd this fixture holds).
  VmConfig config(const std::string& name) const;
  std::filesystem::path consoleLog() const { return runDir_ / "console.log"; }

  // Polls GET / until it answers 200 or the timeout passes.
  bool waitHttp(std::chrono::milliseconds timeout) const;

 private:
  void cleanup();

  std::string netns_;
  std::string tapName_ = "s2zt0";
  std::string vmAddress_, hostAddress_, mac_;
  std::filesystem::path runDir_;
  UniqueFd original_;  // the thread's netns before entering ours
  UniqueFd tap_;
  UniqueFd console_;  // append-only write end of consoleLog()
  bool entered_ = false;
};

// GET /counter: the test guest's count after this request (it counts in
// guest memory, so a count that goes on proves the RAM survived). Fails the
// test when no 200 comes within 10 s.
unsigned long counterOf(const VmNet& net);

using vmm::processesMentioning;

}  // namespace s2z::vmm::testing
