// The benchmark's own network namespace: created, entered by the calling
// thread with setns() (threads and child processes started afterwards
// inherit it; /sys stays as it is, unlike `ip netns exec`), `lo` up, and
// deleted again in the destructor.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::bench {

class BenchNetns {
 public:
  // Creates and enters s2zt-bench-<pid>. Fails: kSystem naming the step.
  static Result<std::unique_ptr<BenchNetns>> enter();
  ~BenchNetns();
  BenchNetns(const BenchNetns&) = delete;
  BenchNetns& operator=(const BenchNetns&) = delete;

  const std::string& name() const { return name_; }

 private:
  BenchNetns(std::string name, UniqueFd original) : name_(std::move(name)), original_(std::move(original)) {}
  std::string name_;
  UniqueFd original_;  // the thread's namespace before entering
};

}  // namespace s2z::bench
