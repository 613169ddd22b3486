#include "standin/hclog_line.h"

#include <algorithm>
#include <regex>

#include <nlohmann/json.hpp>

namespace s2z::standin {

namespace {

const char* const kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string prefixLevel(const std::string& line) {
  static const std::pair<const char*, const char*> kPrefixes[] = {
      {"[TRACE]", "trace"}, {"[DEBUG]", "debug"}, {"[INFO]", "info"},
      {"[WARN]", "warn"},   {"[ERROR]", "error"}};
  for (const auto& [prefix, level] : kPrefixes) {
    if (line.rfind(prefix, 0) == 0) return level;
  }
  return "debug";
}

}  // namespace

HclogLine parseHclogLine(const std::string& line) {
  HclogLine out;
  out.raw = line;
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    out.level = prefixLevel(line);
    out.message = line;
    return out;
  }
  out.isJson = true;
  auto stringField = [&](const char* key, std::string* dest) {
    auto it = j.find(key);
    if (it == j.end()) return;
    if (!it->is_string()) {
      out.violations.push_back(std::string(key) + " is not a JSON string (would panic the client)");
      return;
    }
    *dest = it->get<std::string>();
  };
  stringField("@level", &out.level);
  stringField("@message", &out.message);
  stringField("@timestamp", &out.timestamp);
  out.level = lower(out.level);
  if (std::find(std::begin(kLevels), std::end(kLevels), out.level) == std::end(kLevels)) {
    out.violations.push_back("@level \"" + out.level + "\" is not an hclog level");
    out.level = "debug";
  }
  static const std::regex kTimestamp(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$)");
  if (j.contains("@timestamp") && !std::regex_match(out.timestamp, kTimestamp)) {
    out.violations.push_back("@timestamp \"" + out.timestamp +
                             "\" does not match 2006-01-02T15:04:05.000000Z07:00");
  }
  return out;
}

}  // namespace s2z::standin
