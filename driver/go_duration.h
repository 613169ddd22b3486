// Go duration strings ("5m", "10s", "250ms", "1h30m", "1.5h"), the syntax
// Nomad users know from every other duration in a job file.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace s2z::driver {

// Parses Go's time.ParseDuration syntax: an optional sign and a sequence of
// decimal numbers (with optional fraction) each followed by a unit
// (ns, us, µs, ms, s, m, h); "0" alone is allowed. Fails with
// kInvalidArgument (message says what is wrong) on bad syntax or overflow.
Result<std::chrono::nanoseconds> parseGoDuration(std::string_view text);

// Formats a duration the way Go prints it ("5m0s", "250ms", "1h30m0s").
std::string formatGoDuration(std::chrono::nanoseconds d);

}  // namespace s2z::driver
