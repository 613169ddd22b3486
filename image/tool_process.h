// Running the image tools (skopeo, umoci, mke2fs): argv without a shell,
// stdout captured, stderr kept for the error, killed at a deadline.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::image {

struct ToolOutput {
  std::string out;
};

// kTimeout when the deadline passed (the process group is SIGKILLed);
// kSystem with "<tool>: <last stderr lines>" when it exits non-zero.
Result<ToolOutput> runTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

}  // namespace s2z::image
