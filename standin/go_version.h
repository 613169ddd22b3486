// Version strings parsed the way hashicorp/go-version (used by Nomad's plugin
// loader) parses them: optional "v", dot-separated numbers (missing segments
// are zero), optional -prerelease and +metadata.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace s2z::standin {

struct GoVersion {
  std::vector<long long> segments;  // at least 3
  std::string prerelease;
  std::string metadata;

  // nullopt when go-version would reject the string ("Malformed version").
  static std::optional<GoVersion> parse(const std::string& text);
  // go-version Equal: same segments and prerelease; metadata ignored.
  bool equals(const GoVersion& other) const;
};

}  // namespace s2z::standin
