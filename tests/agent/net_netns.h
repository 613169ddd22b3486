// Test fixture: a fresh network namespace the calling thread enters for the
// lifetime of the object (threads started meanwhile inherit it), with `lo` up.
// Removed again in the destructor, also when a test fails. Uses setns()
// rather than `ip netns exec`, which would remount /sys.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "common/unique_fd.h"

namespace s2z::testing {

class ScopedNetns {
 public:
  explicit ScopedNetns(const std::string& tag) {
    static std::atomic<int> counter{0};
    name_ = "s2zt-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    if (std::system(("ip netns add " + name_).c_str()) != 0)
      throw std::runtime_error("ip netns add " + name_ + " failed");
    original_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    UniqueFd target(::open(("/var/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
    if (!original_ || !target || ::setns(target.get(), CLONE_NEWNET) < 0) {
      cleanup();
      throw std::runtime_error("enter netns " + name_ + " failed");
    }
    entered_ = true;
    if (std::system("ip link set lo up") != 0) {
      cleanup();
      throw std::runtime_error("lo up in " + name_ + " failed");
    }
  }
  ~ScopedNetns() { cleanup(); }
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

  const std::string& name() const { return name_; }

 private:
  void cleanup() {
    if (entered_) ::setns(original_.get(), CLONE_NEWNET);
    entered_ = false;
    if (!name_.empty()) (void)std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
    name_.clear();
  }

  std::string name_;
  UniqueFd original_;
  bool entered_ = false;
};

// The error text of a failed Result, "" when ok: safe inside *_MESSAGE
// macros, which doctest may evaluate for passing assertions too (-s).
template <typename R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.error().describe();
}

}  // namespace s2z::testing
