#include "agent/lifecycle.h"

#include <algorithm>

namespace s2z::agent {

Result<void> Lifecycle::require(const char* operation,
                                std::initializer_list<InstanceState> allowed) const {
  if (std::find(allowed.begin(), allowed.end(), state_) != allowed.end()) return okResult();
  return makeError(ErrorCode::kFailedPrecondition,
                   std::string(operation) + ": instance is " + instanceStateName(state_));
}

Result<void> Lifecycle::move(const char* operation, std::initializer_list<InstanceState> from,
                             InstanceState to) {
  auto allowed = require(operation, from);
  if (!allowed.ok()) return allowed;
  state_ = to;
  return okResult();
}

}  // namespace s2z::agent
