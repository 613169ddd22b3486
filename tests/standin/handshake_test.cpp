// Handshake lines, hclog stderr lines and version strings are judged exactly
// as the Nomad client (go-plugin, hclog, go-version) judges them.
#include <doctest/doctest.h>

#include "standin/go_version.h"
#include "standin/handshake.h"
#include "standin/hclog_line.h"

using namespace s2z::standin;

namespace {
const std::vector<int> kNomad = {2};
}

TEST_CASE("handshake lines go-plugin accepts") {
  auto six = parseHandshake("1|2|unix|/tmp/plugin123|grpc|\n", kNomad);
  REQUIRE(six.ok());
  CHECK(six->network == "unix");
  CHECK(six->address == "/tmp/plugin123");
  CHECK(six->protocol == "grpc");
  CHECK(parseHandshake("1|2|unix|/tmp/p|grpc", kNomad).ok());
  CHECK(parseHandshake("  1|2|tcp|127.0.0.1:10000|grpc|  ", kNomad).ok());
  // go-plugin 1.4 splits into six fields; a short trailing field is ignored.
  CHECK(parseHandshake("1|2|unix|/tmp/p|grpc||true", kNomad).ok());
}

TEST_CASE("handshake lines go-plugin (as configured by Nomad) rejects") {
  auto netrpc = parseHandshake("1|2|unix|/tmp/p", kNomad);
  REQUIRE_FALSE(netrpc.ok());
  CHECK(netrpc.error().message.find("netrpc") != std::string::npos);
  CHECK_FALSE(parseHandshake("1|2|unix|/tmp/p|netrpc|", kNomad).ok());
  CHECK_FALSE(parseHandshake("2|2|unix|/tmp/p|grpc|", kNomad).ok());
  CHECK_FALSE(parseHandshake("1|1|unix|/tmp/p|grpc|", kNomad).ok());
  CHECK_FALSE(parseHandshake("1|x|unix|/tmp/p|grpc|", kNomad).ok());
  CHECK_FALSE(parseHandshake("1|2|udp|/tmp/p|grpc|", kNomad).ok());
  CHECK_FALSE(parseHandshake("1|2|unix", kNomad).ok());
  CHECK_FALSE(parseHandshake("", kNomad).ok());
  CHECK_FALSE(parseHandshake("starting plugin...", kNomad).ok());
  std::string cert(64, 'A');
  CHECK_FALSE(parseHandshake("1|2|unix|/tmp/p|grpc|" + cert, kNomad).ok());
}

TEST_CASE("hclog JSON lines: valid entries") {
  auto l = parseHclogLine(
      R"({"@level":"info","@message":"vm started","@timestamp":"2024-05-01T10:00:00.123456Z","task_id":"x"})");
  CHECK(l.isJson);
  CHECK(l.level == "info");
  CHECK(l.message == "vm started");
  CHECK(l.violations.empty());
  auto offset = parseHclogLine(
      R"({"@level":"WARN","@message":"m","@timestamp":"2024-05-01T10:00:00.000001+02:00"})");
  CHECK(offset.violations.empty());
  CHECK(offset.level == "warn");
}

TEST_CASE("hclog JSON lines: contract violations are flagged") {
  CHECK_FALSE(parseHclogLine(R"({"@level":3,"@message":"m"})").violations.empty());
  CHECK_FALSE(parseHclogLine(R"({"@level":"info","@message":{"a":1}})").violations.empty());
  CHECK_FALSE(parseHclogLine(
                  R"({"@level":"info","@message":"m","@timestamp":"2024-05-01T10:00:00.123Z"})")
                  .violations.empty());
  CHECK_FALSE(parseHclogLine(R"({"@level":"notice","@message":"m"})").violations.empty());
  CHECK_FALSE(parseHclogLine(R"({"@message":"no level"})").violations.empty());
  CHECK_FALSE(parseHclogLine(R"({"@level":"info","@message":"m","@timestamp":17})").violations.empty());
}

TEST_CASE("non-JSON stderr lines get a level from their prefix") {
  auto warn = parseHclogLine("[WARN] something odd");
  CHECK_FALSE(warn.isJson);
  CHECK(warn.level == "warn");
  CHECK(warn.violations.empty());
  CHECK(parseHclogLine("plain text").level == "debug");
}

TEST_CASE("versions as hashicorp/go-version parses them") {
  auto want = GoVersion::parse("0.1.0");
  REQUIRE(want);
  CHECK(GoVersion::parse("v0.1.0")->equals(*want));
  CHECK(GoVersion::parse("0.1")->equals(*want));
  CHECK(GoVersion::parse("0.1.0+build5")->equals(*want));
  CHECK_FALSE(GoVersion::parse("0.1.0-beta")->equals(*want));
  CHECK_FALSE(GoVersion::parse("0.2.0")->equals(*want));
  CHECK(GoVersion::parse("1.2.3-rc.1+abc"));
  CHECK_FALSE(GoVersion::parse("latest"));
  CHECK_FALSE(GoVersion::parse(""));
}
