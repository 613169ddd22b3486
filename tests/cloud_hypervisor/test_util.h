// Small helpers shared by the test files.
#pragma once

#include <string>

#include "common/result.h"

namespace s2z::tests::ch {

// The error text of a result, "" when it is ok: for REQUIRE_MESSAGE.
template <typename R>
std::string errText(const R& r) {
  return r.ok() ? std::string() : r.error().describe();
}

}  // namespace s2z::tests::ch
