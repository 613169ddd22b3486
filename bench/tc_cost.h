// The TC classifier's added cost per packet: BPF_PROG_TEST_RUN over a TCP SYN
// frame, tc_idle (running instance, counted path) vs. an empty classifier.
#pragma once

#include "common/result.h"

namespace s2z::bench {

struct TcCost {
  double countedNs = 0;  // tc_idle, ordinary packet of a running instance
  double healthNs = 0;   // tc_idle, packet carrying the health mark
  double emptyNs = 0;    // a classifier that only returns TC_ACT_OK
  double addedNs() const { return countedNs > emptyNs ? countedNs - emptyNs : 0; }
};

// Loads a private (unpinned) tc_idle, registers ifindex 1 as running and
// times `repeat` runs, median of three. Needs CAP_BPF. Fails naming the step.
Result<TcCost> measureTcCost(unsigned repeat);

}  // namespace s2z::bench
