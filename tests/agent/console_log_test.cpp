// The kernel console file of guest-agent tasks: bounded by trim(), and its
// last lines quoted when the guest agent never answers.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "agent/console_log.h"
#include "tests/scratch_dir.h"

namespace s2z::agent {
namespace {

void append(const ConsoleLog& log, const std::string& text) {
  REQUIRE(::write(log.fd(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

TEST_CASE("console log: the last lines for an error message, blank lines and a cut first line left out") {
  tests::ScratchDir dir;
  auto log = ConsoleLog::open(dir.path / "console.log");
  REQUIRE(log.ok());
  CHECK(log->lastLines(3).empty());
  append(*log, "[    0.000000] Linux version 6.1\r\n");
  CHECK(log->lastLines(3) == "[    0.000000] Linux version 6.1");
  append(*log, "virtio_net virtio1 eth0: renamed\n\n[    4.2] Kernel panic - not syncing: Attempted to kill init!\n");
  CHECK(log->lastLines(2) ==
        "virtio_net virtio1 eth0: renamed / [    4.2] Kernel panic - not syncing: Attempted to kill init!");
  CHECK(log->lastLines(5) == "[    0.000000] Linux version 6.1 / virtio_net virtio1 eth0: renamed / "
                             "[    4.2] Kernel panic - not syncing: Attempted to kill init!");
  // Only the last 4 KiB are read; the line the window cuts is not quoted.
  append(*log, std::string(5000, 'x') + "\nlast\n");
  CHECK(log->lastLines(3) == "last");
}

TEST_CASE("console log: trim keeps the newest half once over the limit; writes go on at the end") {
  tests::ScratchDir dir;
  auto log = ConsoleLog::open(dir.path / "console.log", 1000);
  REQUIRE(log.ok());
  append(*log, std::string(600, 'a'));
  log->trim();
  CHECK(std::filesystem::file_size(dir.path / "console.log") == 600);  // under the limit: kept
  append(*log, std::string(600, 'b'));
  log->trim();
  CHECK(std::filesystem::file_size(dir.path / "console.log") == 500);
  append(*log, "\nend\n");
  std::ifstream in(dir.path / "console.log");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == std::string(500, 'b') + "\nend\n");
  const auto ownerOnly = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
  CHECK((std::filesystem::status(dir.path / "console.log").permissions() & std::filesystem::perms::all) == ownerOnly);
}

}  // namespace
}  // namespace s2z::agent
