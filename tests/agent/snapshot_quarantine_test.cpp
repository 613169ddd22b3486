// The quarantine of refused snapshots: files moved, never copied or lost,
// into owner-only entries, of which only the newest `kept` stay.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "agent/snapshot_quarantine.h"
#include "tests/err_text.h"

namespace s2z::agent {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> entriesOf(const fs::path& root) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(root)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("quarantine: the files move into an owner-only entry; only the newest `kept` entries stay") {
  char tmpl[] = "/tmp/s2z-quarantine-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const fs::path base = tmpl, runDir = base / "run", root = base / "quarantine";
  fs::create_directories(runDir / "snapshot");

  std::vector<fs::path> made;
  for (int i = 0; i < 4; ++i) {
    std::ofstream(runDir / "snapshot" / "state") << "state " << i;
    std::ofstream(runDir / "guest-ram") << "ram " << i;
    auto entry = quarantineSnapshot({runDir / "snapshot", runDir / "guest-ram", runDir / "missing"}, root,
                                    "alloc/web/1", /*kept=*/2);
    REQUIRE_MESSAGE(entry.ok(), s2z::tests::errText(entry));
    made.push_back(*entry);
    CHECK_FALSE(fs::exists(runDir / "snapshot"));  // moved, not copied
    CHECK_FALSE(fs::exists(runDir / "guest-ram"));
    std::ifstream state(*entry / "snapshot" / "state");
    std::string text;
    std::getline(state, text);
    CHECK(text == "state " + std::to_string(i));
    struct stat st {};
    REQUIRE(::stat(entry->c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    fs::create_directories(runDir / "snapshot");
  }
  CHECK(entriesOf(root) == std::vector<fs::path>{made[2], made[3]});

  // At least the new entry stays, whatever `kept` says.
  std::ofstream(runDir / "guest-ram") << "ram 4";
  auto last = quarantineSnapshot({runDir / "guest-ram"}, root, "alloc/web/1", /*kept=*/0);
  REQUIRE(last.ok());
  CHECK(entriesOf(root) == std::vector<fs::path>{*last});
  fs::remove_all(base);
}

}  // namespace s2z::agent
