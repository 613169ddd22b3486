#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace s2z::bench {

Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least p% of the sample at or below it.
  auto rank = [&](double p) {
    size_t r = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::clamp<size_t>(r, 1, v.size()) - 1];
  };
  s.n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  s.p95 = rank(95);
  s.sum = std::accumulate(v.begin(), v.end(), 0.0);
  s.mean = s.sum / static_cast<double>(v.size());
  return s;
}

}  // namespace s2z::bench
