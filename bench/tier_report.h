// The sleep tiers' table (markdown, for the README) and plot (PNG through
// gnuplot): wake latency and what a sleeping task holds, by tier, beside a
// cold boot.
#pragma once

#include <filesystem>
#include <string>

#include "bench/stats.h"
#include "bench/tier_scenarios.h"
#include "common/result.h"

namespace s2z::bench {

// coldBootMs: the agent scenarios' cold boots (start -> full response).
std::string tierTable(const TierResults& r, const Summary& coldBootMs);

// Two panels: wake latency (median, p95) and host memory per sleeping task
// (held: VMM anon + RAM file cached; VMM RSS; page cache of the RAM file),
// by tier. Needs
// gnuplot (gnuplot-nox): kNotFound without it.
Result<void> plotTiers(const TierResults& r, const Summary& coldBootMs, const std::filesystem::path& png);

}  // namespace s2z::bench
