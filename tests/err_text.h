// The error text of a Result for a check's message: REQUIRE_MESSAGE(r.ok(),
// errText(r)). doctest builds the message of a passing check too when it
// reports successes (`-s`), and error() of a Result that holds a value
// throws, so the message must not call it blindly.
#pragma once

#include <string>

#include "common/result.h"

namespace s2z::tests {

// "" when r is ok.
template <typename R>
std::string errText(const R& r) {
  return r.ok() ? std::string() : r.error().describe();
}

}  // namespace s2z::tests
