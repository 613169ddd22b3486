// Small helpers shared by the test files.
#pragma once

#include <string>

#include "tests/err_text.h"

namespace s2z::tests::ch {

using s2z::tests::errText;

}  // namespace s2z::tests::ch
