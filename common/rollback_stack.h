// Undo stack for staged operations (StartTask stages, instance start: prepare ->
// lease -> tap -> ...): each completed stage pushes its undo; unless commit() is
// called, the destructor runs the undos newest first. Undo steps log their own failures.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace s2z {

class RollbackStack {
 public:
  RollbackStack() = default;
  RollbackStack(const RollbackStack&) = delete;
  RollbackStack& operator=(const RollbackStack&) = delete;
  ~RollbackStack() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
  }

  void push(std::function<void()> undo) { undo_.push_back(std::move(undo)); }
  // Keeps everything done so far.
  void commit() { undo_.clear(); }

 private:
  std::vector<std::function<void()>> undo_;
};

}  // namespace s2z
