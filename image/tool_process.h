// Running the image tools (skopeo, umoci, mke2fs): argv without a shell,
// stdout captured, stderr kept for the error, killed at a deadline.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::image {

struct ToolOutput {
  std::string out;
};

// Called every `interval` while a tool runs (progress reports).
struct ToolTicker {
  std::chrono::milliseconds interval{10000};
  std::function<void()> tick;
};

// kTimeout when the deadline passed (the process group is SIGKILLed);
// kSystem with "<tool>: <last stderr lines>" when it exits non-zero.
Result<ToolOutput> runTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           const ToolTicker* ticker = nullptr);

}  // namespace s2z::image
