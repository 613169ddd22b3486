// Evaluates the HCL expressions found in hclspec Literal values: numbers,
// quoted strings, true/false/null, tuples [..] and objects { k = v }.
// Function calls (which Nomad also allows) are not supported and fail.
#pragma once

#include <string>

#include "common/result.h"
#include "standin/cty_value.h"

namespace s2z::standin {

// Fails with kInvalidArgument naming the expression when it cannot be parsed.
Result<CtyValue> evalHclLiteral(const std::string& expression);

}  // namespace s2z::standin
