#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "bench/stats.h"

using s2z::bench::summarize;

TEST_CASE("summarize: nearest-rank p95, median of even and odd samples") {
  std::vector<double> v;
  for (int i = 20; i >= 1; --i) v.push_back(i);  // unsorted input
  auto s = summarize(v);
  CHECK(s.n == 20);
  CHECK(s.min == 1);
  CHECK(s.max == 20);
  CHECK(s.median == doctest::Approx(10.5));
  CHECK(s.p95 == 19);  // ceil(0.95 * 20) = 19th value
  CHECK(s.mean == doctest::Approx(10.5));
  CHECK(s.sum == doctest::Approx(210));

  auto odd = summarize({5, 1, 3});
  CHECK(odd.median == 3);
  CHECK(odd.p95 == 5);
}

TEST_CASE("summarize: empty and single samples") {
  auto e = summarize({});
  CHECK(e.n == 0);
  CHECK(e.median == 0);
  auto one = summarize({42});
  CHECK(one.min == 42);
  CHECK(one.p95 == 42);
  CHECK(one.max == 42);
}
