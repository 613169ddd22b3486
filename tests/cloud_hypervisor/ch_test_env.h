// Fixture pieces for the backend's integration tests: a scratch run dir, a
// `cloud-hypervisor` wrapper around the fake binary (version, record file,
// injected failures), a real tap opened inside a throw-away network
// namespace, and the fake's request records.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "tests/cloud_hypervisor/ch_api_standin.h"
#include "vmm/vmm.h"

namespace s2z::tests::ch {

// A tap device in its own network namespace; both removed on destruction.
class NetnsTap {
 public:
  NetnsTap();   // REQUIREs success (root); the name is s2zt-ch-<pid>-<n>
  ~NetnsTap();
  NetnsTap(const NetnsTap&) = delete;
  NetnsTap& operator=(const NetnsTap&) = delete;
  int fd() const { return fd_.get(); }
  const std::string& name() const { return tapName_; }

 private:
  std::string netns_;
  std::string tapName_;
  UniqueFd fd_;
};

class ChTestEnv {
 public:
  // version: what the fake claims ("45.0"); extraArgs: more fake options,
  // e.g. "--fake-fail 'vm.snapshot=500:disk full'" or "--fake-no-userfaultfd".
  explicit ChTestEnv(const std::string& version, const std::vector<std::string>& extraArgs = {});
  ~ChTestEnv();

  // Rewrites the wrapper: VMMs started from now on get these fake options
  // instead (e.g. none, to show that a backend recovers from a bad VMM).
  void setFakeArgs(const std::vector<std::string>& extraArgs);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path binary() const { return dir_ / "cloud-hypervisor"; }
  std::filesystem::path snapshotDir() const { return dir_ / "snapshot"; }
  vmm::VmConfig config(int tapFd) const;
  // What the VMs wrote to their serial console (the config's console fd).
  std::string consoleText() const;

  // Every request the fake processes have answered so far, in order.
  std::vector<RecordedRequest> requests() const;
  std::vector<std::string> endpoints() const;  // just the endpoint names

 private:
  std::string version_;
  std::filesystem::path dir_;
  UniqueFd console_;  // write end of dir_/console.log, passed as the console fd
};

// The stamp every test snapshot carries (task "ch-test", generation 1).
inline const vmm::SnapshotStamp kStamp{"ch-test", 1};

// True while a process with this identity is alive (and not a zombie).
bool processAlive(const vmm::ProcessIdentity& id);

// This test process's children, zombies included (from /proc/*/stat).
std::vector<pid_t> childProcesses();

}  // namespace s2z::tests::ch
