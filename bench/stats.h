// Order statistics of a sample of measurements (nearest-rank percentiles).
#pragma once

#include <cstddef>
#include <vector>

namespace s2z::bench {

struct Summary {
  size_t n = 0;
  double min = 0, median = 0, p95 = 0, max = 0, mean = 0, sum = 0;
};

// Summary of `values`; all zero for an empty sample.
Summary summarize(std::vector<double> values);

}  // namespace s2z::bench
