// Which deep-sleeping tasks may keep a standby VMM (plugin `standby_vmms`):
// at most `limit` host-wide, for the most recently slept ones. A standby
// costs ~50 MiB and saves the wake its process start-up; with the default
// limit 0 a deep-sleeping task holds no process at all.
//
// Pull, not push: a task that lost its place learns it from holds() at its
// next idle check (every idle poll) and stops its own standby, so no task
// ever reaches into another's VMM.
#pragma once

#include <deque>
#include <mutex>
#include <string>

namespace s2z::agent {

class StandbyBudget {
 public:
  explicit StandbyBudget(unsigned limit) : limit_(limit) {}

  // taskId has just gone deep: true if it may start a standby. It becomes the
  // most recent; the oldest holders beyond the limit lose their place.
  bool claim(const std::string& taskId);
  // Whether taskId still has a place (false once displaced or released).
  bool holds(const std::string& taskId) const;
  // taskId woke, stopped, or its standby is gone. Idempotent.
  void release(const std::string& taskId);
  unsigned limit() const { return limit_; }

 private:
  const unsigned limit_;
  mutable std::mutex mutex_;
  std::deque<std::string> holders_;  // oldest first
};

}  // namespace s2z::agent
