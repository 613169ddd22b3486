// Turns the scenario results into the one markdown table (for the README) or
// a JSON document with every sample.
#pragma once

#include <string>

#include "bench/agent_scenarios.h"
#include "bench/direct_scenarios.h"
#include "bench/image_scenarios.h"
#include "bench/tc_cost.h"

namespace s2z::bench {

struct BenchResults {
  std::string commandLine;
  std::string host;          // kernel, cores, QEMU version, accelerator
  AgentResults agent;
  DirectResults direct;
  ImageResults images;
  TcCost tc;
  std::string tcProblem;     // why tc cost is missing, if it is
  double totalSeconds = 0;
};

std::string markdownReport(const BenchResults& r, const BenchConfig& c);
std::string jsonReport(const BenchResults& r, const BenchConfig& c);

}  // namespace s2z::bench
