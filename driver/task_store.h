// The tasks this plugin process tracks, by Nomad task id. Thread-safe; the
// handles themselves are shared so an RPC keeps using one while another
// RPC removes it from the store.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "driver/task_handle.h"

namespace s2z::driver {

class TaskStore {
 public:
  // Adds handle unless its id is already tracked; returns the tracked one
  // (which is handle itself when it was added).
  std::shared_ptr<TaskHandle> insertOrGet(std::shared_ptr<TaskHandle> handle);
  // nullptr when unknown.
  std::shared_ptr<TaskHandle> get(const std::string& id) const;
  // Removes id if present; returns what was removed (nullptr if nothing).
  std::shared_ptr<TaskHandle> remove(const std::string& id);
  std::vector<std::shared_ptr<TaskHandle>> all() const;
  size_t size() const;

 private:
  mutable std::mutex mu_;  // guards tasks_
  std::map<std::string, std::shared_ptr<TaskHandle>> tasks_;
};

}  // namespace s2z::driver
