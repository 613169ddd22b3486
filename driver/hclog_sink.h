// An spdlog sink that writes hclog JSON lines, the format the Nomad client
// (go-plugin) parses from a plugin's stderr (protocol doc §1.6): one JSON
// object per line with string "@level", "@message", "@timestamp"
// ("2006-01-02T15:04:05.000000Z", always UTC, exactly 6 fractional digits)
// and "@module", plus key/values. Anything that is not valid JSON with those
// string fields would be logged raw at DEBUG by the client, or worse, panic it.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace s2z::driver {

inline constexpr const char* kLogModule = "s2z-kata";

// Formats a timestamp as hclog's "2006-01-02T15:04:05.000000Z07:00" in UTC.
std::string hclogTimestamp(std::chrono::system_clock::time_point t);

// hclog's level names; spdlog critical maps to "error", off to "off".
const char* hclogLevelName(spdlog::level::level_enum level);

// Builds one hclog JSON line (without the trailing newline). Invalid UTF-8
// in any string is replaced, never rejected, so the line is always valid JSON.
std::string hclogLine(spdlog::level::level_enum level, std::chrono::system_clock::time_point time,
                      std::string_view message,
                      const std::map<std::string, std::string>& keyValues = {});

// The sink. Writes each record with one write(2) to fd (borrowed; 2 for
// stderr). Adds "@caller" when the record has a source location and
// "logger" when the logger has a name. Write errors are ignored: there is
// nowhere else to report them.
class HclogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit HclogSink(int fd = 2) : fd_(fd) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  int fd_;
};

// Replaces spdlog's default logger by one writing hclog JSON to fd with the
// given level; library code logging through spdlog's default logger then
// reaches the Nomad agent log.
void installHclogLogger(spdlog::level::level_enum level, int fd = 2);

}  // namespace s2z::driver
