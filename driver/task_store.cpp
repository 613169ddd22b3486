#include "driver/task_store.h"

namespace s2z::driver {

std::shared_ptr<TaskHandle> TaskStore::insertOrGet(std::shared_ptr<TaskHandle> handle) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = tasks_.emplace(handle->id(), handle);
  return it->second;
}

std::shared_ptr<TaskHandle> TaskStore::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : it->second;
}

std::shared_ptr<TaskHandle> TaskStore::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return nullptr;
  auto handle = std::move(it->second);
  tasks_.erase(it);
  return handle;
}

std::vector<std::shared_ptr<TaskHandle>> TaskStore::all() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<TaskHandle>> out;
  out.reserve(tasks_.size());
  for (const auto& [id, handle] : tasks_) out.push_back(handle);
  return out;
}

size_t TaskStore::size() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

}  // namespace s2z::driver
