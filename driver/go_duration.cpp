#include "driver/go_duration.h"

#include <cstdint>
#include <limits>

#include <fmt/format.h>

namespace s2z::driver {
namespace {

struct Unit {
  std::string_view name;
  uint64_t nanos;
};
// Longest names first where one is a prefix of another ("ms" before "m").
constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xC2\xB5s", 1000},  // U+00B5 micro sign
    {"\xCE\xBCs", 1000},  // U+03BC Greek mu
    {"ms", 1000000},
    {"s", 1000000000ULL},
    {"m", 60ULL * 1000000000ULL},
    {"h", 3600ULL * 1000000000ULL},
};

Error bad(std::string_view text, std::string_view why) {
  return makeError(ErrorCode::kInvalidArgument,
                   fmt::format("invalid duration \"{}\": {}", text, why));
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

Result<std::chrono::nanoseconds> parseGoDuration(std::string_view text) {
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return bad(text, "expected a number with a unit, like \"5m\"");

  const uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t total = 0;
  while (!s.empty()) {
    // Whole part.
    uint64_t whole = 0;
    bool sawDigits = false, overflow = false;
    while (!s.empty() && isDigit(s[0])) {
      sawDigits = true;
      if (whole > (kMax - (s[0] - '0')) / 10) overflow = true;
      else whole = whole * 10 + static_cast<uint64_t>(s[0] - '0');
      s.remove_prefix(1);
    }
    // Fraction: keep up to 18 digits, enough for nanosecond precision of hours.
    uint64_t frac = 0, scale = 1;
    bool sawFraction = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      while (!s.empty() && isDigit(s[0])) {
        sawFraction = true;
        if (scale < 1000000000000000000ULL) {
          frac = frac * 10 + static_cast<uint64_t>(s[0] - '0');
          scale *= 10;
        }
        s.remove_prefix(1);
      }
    }
    if (!sawDigits && !sawFraction) return bad(text, "expected a number");
    if (overflow) return bad(text, "too large");
    size_t unitLen = 0;
    while (unitLen < s.size() && !isDigit(s[unitLen]) && s[unitLen] != '.') ++unitLen;
    if (unitLen == 0) {
      return bad(text, "missing unit (use ns, us, ms, s, m or h)");
    }
    std::string_view unitName = s.substr(0, unitLen);
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (u.name == unitName) unit = &u;
    }
    if (unit == nullptr) {
      return bad(text, fmt::format("unknown unit \"{}\" (use ns, us, ms, s, m or h)", unitName));
    }
    s.remove_prefix(unitLen);
    if (whole > kMax / unit->nanos) return bad(text, "too large");
    uint64_t part = whole * unit->nanos;
    // frac/scale of a unit, computed without overflowing (scale <= 1e18).
    long double fracNanos = static_cast<long double>(frac) * unit->nanos / scale;
    part += static_cast<uint64_t>(fracNanos);
    if (part > kMax || total > kMax - part) return bad(text, "too large");
    total += part;
  }
  int64_t value = static_cast<int64_t>(total);
  return std::chrono::nanoseconds(negative ? -value : value);
}

std::string formatGoDuration(std::chrono::nanoseconds d) {
  int64_t n = d.count();
  if (n == 0) return "0s";
  std::string sign = n < 0 ? "-" : "";
  uint64_t u = n < 0 ? static_cast<uint64_t>(-(n + 1)) + 1 : static_cast<uint64_t>(n);
  auto fraction = [](uint64_t value, uint64_t unit) {
    std::string out = fmt::format("{}", value / unit);
    uint64_t rest = value % unit;
    if (rest != 0) {
      std::string digits = fmt::format("{}", rest);
      std::string width = fmt::format("{}", unit);
      digits = std::string(width.size() - 1 - digits.size(), '0') + digits;
      while (!digits.empty() && digits.back() == '0') digits.pop_back();
      out += "." + digits;
    }
    return out;
  };
  if (u < 1000) return sign + fmt::format("{}ns", u);
  if (u < 1000000) return sign + fraction(u, 1000) + "\xC2\xB5s";
  if (u < 1000000000ULL) return sign + fraction(u, 1000000) + "ms";
  uint64_t secsTotal = u / 1000000000ULL;
  uint64_t subNanos = u % 1000000000ULL;
  uint64_t hours = secsTotal / 3600, minutes = (secsTotal / 60) % 60, secs = secsTotal % 60;
  std::string secPart = fraction(secs * 1000000000ULL + subNanos, 1000000000ULL) + "s";
  if (hours > 0) return sign + fmt::format("{}h{}m", hours, minutes) + secPart;
  if (minutes > 0) return sign + fmt::format("{}m", minutes) + secPart;
  return sign + secPart;
}

}  // namespace s2z::driver
