#include "standin/go_version.h"

#include <regex>

namespace s2z::standin {

std::optional<GoVersion> GoVersion::parse(const std::string& text) {
  // go-version's VersionRegexpRaw, anchored.
  static const std::regex kVersion(
      R"(^v?([0-9]+(\.[0-9]+)*?)(-([0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)|(-?([A-Za-z\-~]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)))?(\+([0-9A-Za-z\-~]+(\.[0-9A-Za-z\-~]+)*))?$)");
  std::smatch m;
  if (!std::regex_match(text, m, kVersion)) return std::nullopt;
  GoVersion v;
  std::string nums = m[1].str();
  size_t start = 0;
  while (start <= nums.size()) {
    size_t dot = nums.find('.', start);
    std::string seg = nums.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    try {
      v.segments.push_back(std::stoll(seg));
    } catch (...) {
      return std::nullopt;
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  while (v.segments.size() < 3) v.segments.push_back(0);
  v.prerelease = m[4].matched ? m[4].str() : m[7].str();
  v.metadata = m[10].str();
  return v;
}

bool GoVersion::equals(const GoVersion& other) const {
  size_t n = std::max(segments.size(), other.segments.size());
  for (size_t i = 0; i < n; ++i) {
    long long a = i < segments.size() ? segments[i] : 0;
    long long b = i < other.segments.size() ? other.segments[i] : 0;
    if (a != b) return false;
  }
  return prerelease == other.prerelease;
}

}  // namespace s2z::standin
