#include "driver/hclog_sink.h"

#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace s2z::driver {

std::string hclogTimestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto sinceEpoch = t.time_since_epoch();
  auto secs = duration_cast<seconds>(sinceEpoch);
  auto micros = duration_cast<microseconds>(sinceEpoch - secs).count();
  if (micros < 0) {  // before 1970: borrow a second so the fraction is positive
    secs -= seconds(1);
    micros += 1000000;
  }
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

const char* hclogLevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "error";
    case spdlog::level::off: return "off";
    default: return "info";
  }
}

std::string hclogLine(spdlog::level::level_enum level, std::chrono::system_clock::time_point time,
                      std::string_view message,
                      const std::map<std::string, std::string>& keyValues) {
  nlohmann::json line = nlohmann::json::object();
  // Key/values first so that the reserved "@" keys always win.
  for (const auto& [key, value] : keyValues) line[key] = value;
  line["@level"] = hclogLevelName(level);
  line["@message"] = std::string(message);
  line["@timestamp"] = hclogTimestamp(time);
  line["@module"] = kLogModule;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void HclogSink::sink_it_(const spdlog::details::log_msg& msg) {
  std::map<std::string, std::string> kv;
  if (!msg.source.empty()) {
    kv["@caller"] = fmt::format("{}:{}", msg.source.filename, msg.source.line);
  }
  if (msg.logger_name.size() > 0) {
    kv["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
  }
  std::string text = hclogLine(msg.level, msg.time,
                               std::string_view(msg.payload.data(), msg.payload.size()), kv);
  text.push_back('\n');
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void installHclogLogger(spdlog::level::level_enum level, int fd) {
  auto logger = std::make_shared<spdlog::logger>("", std::make_shared<HclogSink>(fd));
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace s2z::driver
