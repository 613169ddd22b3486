#include "agent/standby_budget.h"

#include <algorithm>

namespace s2z::agent {

bool StandbyBudget::claim(const std::string& taskId) {
  std::lock_guard lock(mutex_);
  holders_.erase(std::remove(holders_.begin(), holders_.end(), taskId), holders_.end());
  if (limit_ == 0) return false;
  holders_.push_back(taskId);
  while (holders_.size() > limit_) holders_.pop_front();
  return true;
}

bool StandbyBudget::holds(const std::string& taskId) const {
  std::lock_guard lock(mutex_);
  return std::find(holders_.begin(), holders_.end(), taskId) != holders_.end();
}

void StandbyBudget::release(const std::string& taskId) {
  std::lock_guard lock(mutex_);
  holders_.erase(std::remove(holders_.begin(), holders_.end(), taskId), holders_.end());
}

}  // namespace s2z::agent
