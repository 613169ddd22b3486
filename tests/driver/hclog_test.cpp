// hclog JSON lines as the Nomad client parses them from stderr.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <regex>

#include "common/unique_fd.h"
#include "driver/hclog_sink.h"

namespace s2z::driver {
namespace {

const std::regex kTimestamp(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$)");

void checkLine(const std::string& line) {
  CAPTURE(line);
  CHECK(line.find('\n') == std::string::npos);
  auto j = nlohmann::json::parse(line, nullptr, false);
  REQUIRE(j.is_object());
  REQUIRE(j["@level"].is_string());
  REQUIRE(j["@message"].is_string());
  REQUIRE(j["@timestamp"].is_string());
  CHECK(std::regex_match(j["@timestamp"].get<std::string>(), kTimestamp));
  CHECK(j["@module"] == "s2z-kata");
}

TEST_CASE("timestamps have exactly six fractional digits, UTC Z") {
  using namespace std::chrono;
  system_clock::time_point t{seconds(1714557600) + microseconds(123456)};
  CHECK(hclogTimestamp(t) == "2024-05-01T10:00:00.123456Z");
  CHECK(hclogTimestamp(system_clock::time_point{seconds(1714557600)}) ==
        "2024-05-01T10:00:00.000000Z");
  CHECK(hclogTimestamp(system_clock::time_point{seconds(1714557600) + nanoseconds(999)}) ==
        "2024-05-01T10:00:00.000000Z");
  CHECK(std::regex_match(hclogTimestamp(system_clock::now()), kTimestamp));
}

TEST_CASE("levels map to hclog names") {
  CHECK(std::string(hclogLevelName(spdlog::level::trace)) == "trace");
  CHECK(std::string(hclogLevelName(spdlog::level::debug)) == "debug");
  CHECK(std::string(hclogLevelName(spdlog::level::info)) == "info");
  CHECK(std::string(hclogLevelName(spdlog::level::warn)) == "warn");
  CHECK(std::string(hclogLevelName(spdlog::level::err)) == "error");
  CHECK(std::string(hclogLevelName(spdlog::level::critical)) == "error");
}

TEST_CASE("hostile messages still give one valid JSON line") {
  std::string nasty = "line1\nline2\t\"quoted\" \\ \x01 \xff\xfe invalid utf8";
  std::string line = hclogLine(spdlog::level::warn, std::chrono::system_clock::now(), nasty,
                               {{"task_id", "a/b/c"}, {"@level", "spoofed"}});
  checkLine(line);
  auto j = nlohmann::json::parse(line);
  CHECK(j["@level"] == "warn");  // a key/value cannot override the reserved keys
  CHECK(j["task_id"] == "a/b/c");
  CHECK(j["@message"].get<std::string>().find("line1\nline2") == 0);
}

TEST_CASE("the sink writes one JSON object per line to its fd") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  UniqueFd readEnd(fds[0]), writeEnd(fds[1]);
  auto logger = std::make_shared<spdlog::logger>("", std::make_shared<HclogSink>(writeEnd.get()));
  logger->set_level(spdlog::level::trace);
  logger->trace("t {}", 1);
  logger->debug("d");
  logger->info("vm started");
  logger->warn("w");
  logger->error("e");
  logger->critical("c");
  writeEnd.reset();
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(readEnd.get(), buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\n', start);
    REQUIRE(end != std::string::npos);
    lines.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  REQUIRE(lines.size() == 6);
  std::vector<std::string> levels;
  for (const auto& l : lines) {
    checkLine(l);
    levels.push_back(nlohmann::json::parse(l)["@level"]);
  }
  CHECK(levels == std::vector<std::string>{"trace", "debug", "info", "warn", "error", "error"});
  CHECK(nlohmann::json::parse(lines[2])["@message"] == "vm started");
}

}  // namespace
}  // namespace s2z::driver
