// Real kernel objects for the BPF integration tests, each removed by its
// destructor even when a test fails: network namespaces, a held tap, a
// veth pair to a "VM" namespace, a cgroup, a pin root, child processes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/unique_fd.h"

namespace s2z::bpf::test {

// Runs a shell command; returns its exit status.
int sh(const std::string& command);

// A network namespace s2zt-<pid>-<tag> with lo up and IPv6 off (so the
// kernel sends nothing on its own). The constructing thread enters it and
// returns to its original namespace in the destructor.
class TestNetns {
 public:
  explicit TestNetns(const std::string& tag);
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  const std::string& name() const { return name_; }
  // Makes the calling thread enter this namespace.
  void enter() const;

 private:
  std::string name_;
  UniqueFd original_;
};

// A tap opened and held by the test in the current thread's namespace,
// with the host address 10.89.0.1/24 and a permanent neighbour entry for
// the VM address 10.89.0.2 (without one ARP fails before the first frame).
class TestTap {
 public:
  static constexpr const char* kHostAddr = "10.89.0.1";
  static constexpr const char* kVmAddr = "10.89.0.2";
  explicit TestTap(const TestNetns& ns);
  uint32_t ifindex() const { return ifindex_; }
  // Reads every frame queued in the tap; never blocks.
  std::vector<std::vector<uint8_t>> drainFrames() const;

 private:
  UniqueFd fd_;
  uint32_t ifindex_ = 0;
};

// A veth pair: host side in `host` with 10.89.1.1/24, peer 10.89.1.2/24 in
// a second namespace `vm` that plays the VM with real sockets.
class TestVethVm {
 public:
  static constexpr const char* kVmAddr = "10.89.1.2";
  TestVethVm(const TestNetns& host, const TestNetns& vm);
  uint32_t hostIfindex() const { return hostIfindex_; }

 private:
  uint32_t hostIfindex_ = 0;
};

// A cgroup v2 s2z-test-<pid>-<tag> under the cgroup2 mount; its processes
// are killed and the directory removed in the destructor.
class TestCgroup {
 public:
  explicit TestCgroup(const std::string& tag);
  ~TestCgroup();
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;
  const std::string& relPath() const { return relPath_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::string relPath_;
  std::filesystem::path dir_;
};

// A pin root /sys/fs/bpf/s2z-test-<pid>-<tag>; the destructor detaches the
// health hooks pinned there and removes every pin.
class TestPinRoot {
 public:
  explicit TestPinRoot(const std::string& tag);
  ~TestPinRoot();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Forks a child that joins `cgroup` (nullptr: stays where the parent is)
// and exits with fn()'s value; waits for it (killed after 20 s) and
// returns its exit status, or -1 if it died otherwise.
int runChild(const TestCgroup* cgroup, const std::function<int()>& fn);

// Sends `count` UDP datagrams of `payload` bytes to addr:port.
void sendUdp(const char* addr, uint16_t port, int count, size_t payload);
// Starts a non-blocking TCP connect to addr:port (one SYN leaves); returns
// the socket, or an invalid fd when the connect failed outright.
UniqueFd startTcpConnect(const char* addr, uint16_t port);

// IPv4 destination and TCP/UDP port of an Ethernet frame (0 if not IPv4).
struct FrameInfo {
  uint32_t dstBe = 0;
  uint8_t protocol = 0;
  uint16_t dport = 0;
  bool syn = false;
};
FrameInfo parseFrame(const std::vector<uint8_t>& frame);

}  // namespace s2z::bpf::test
