// The snapshot manifest (issue 13, case 6) on real files: a snapshot that is
// corrupt, truncated, stale, foreign, or whose RAM ran on after it, is
// refused with kDataLoss naming why; an intact one passes.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "vmm/snapshot_manifest.h"

namespace s2z::vmm {
namespace {

namespace fs = std::filesystem;

// A run dir with a snapshot as QEMU's sleep leaves it: snapshot/state (device
// state, checked by content) and guest-ram beside it (checked by identity).
struct SnapshotFiles {
  fs::path root = fs::temp_directory_path() / ("s2z-manifest-" + std::to_string(::getpid()) + "-" +
                                               std::to_string(counter()++));
  fs::path dir = root / "snapshot";
  fs::path ram = root / "guest-ram";

  SnapshotFiles() {
    fs::create_directories(dir);
    std::ofstream(dir / "state") << std::string(60000, 'd');
    std::ofstream(ram) << std::string(1 << 20, 'r');
  }
  ~SnapshotFiles() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }

  Result<void> write(const SnapshotStamp& stamp) const {
    SnapshotManifest m{stamp, {}};
    auto state = describeSnapshotFile(dir, "state", FileCheck::kContent);
    auto memory = describeSnapshotFile(dir, ram, FileCheck::kIdentity);
    if (!state.ok()) return state.error();
    if (!memory.ok()) return memory.error();
    m.files = {*state, *memory};
    return writeSnapshotManifest(dir, m);
  }
};

const SnapshotStamp kStamp{"alloc-1/web/0", 7};

std::string refusal(const fs::path& dir, const SnapshotStamp& expected) {
  auto r = verifySnapshot(dir, expected);
  if (r.ok()) return "accepted";
  CHECK(r.error().code == ErrorCode::kDataLoss);
  return r.error().describe();
}

void overwriteByte(const fs::path& file, off_t at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(at);
  f.put('X');
}

}  // namespace

TEST_CASE("snapshot manifest: an intact snapshot passes; each kind of damage is refused, naming it") {
  SnapshotFiles s;
  REQUIRE(s.write(kStamp).ok());
  CHECK(verifySnapshot(s.dir, kStamp).ok());
  // Owner-only like the rest of a snapshot.
  struct stat st {};
  REQUIRE(::stat((s.dir / kManifestFile).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(fs::exists(s.dir / "manifest.json.tmp"));

  SUBCASE("corrupt device state") {
    overwriteByte(s.dir / "state", 30000);
    CHECK(refusal(s.dir, kStamp).find("state is corrupt") != std::string::npos);
  }
  SUBCASE("truncated device state") {
    fs::resize_file(s.dir / "state", 1000);
    CHECK(refusal(s.dir, kStamp).find("(truncated)") != std::string::npos);
  }
  SUBCASE("truncated guest RAM") {
    fs::resize_file(s.ram, 4096);
    CHECK(refusal(s.dir, kStamp).find("(truncated)") != std::string::npos);
  }
  SUBCASE("guest RAM written after the snapshot (the guest ran on it)") {
    overwriteByte(s.ram, 4096);
    CHECK(refusal(s.dir, kStamp).find("changed after the snapshot") != std::string::npos);
  }
  SUBCASE("guest RAM replaced by a copy (another file)") {
    fs::copy_file(s.ram, s.root / "copy");
    fs::rename(s.root / "copy", s.ram);
    CHECK(refusal(s.dir, kStamp).find("another file") != std::string::npos);
  }
  SUBCASE("restored once: markRamInUse makes it refuse a second time") {
    REQUIRE(markRamInUse(s.ram).ok());  // right after: ctime must still move
    CHECK(refusal(s.dir, kStamp).find("changed after the snapshot") != std::string::npos);
  }
  SUBCASE("stale: the record expects a newer generation") {
    CHECK(refusal(s.dir, {kStamp.owner, kStamp.generation + 1}).find("stale: generation 7, expected 8") !=
          std::string::npos);
  }
  SUBCASE("foreign: another task's snapshot") {
    CHECK(refusal(s.dir, {"alloc-2/web/0", kStamp.generation}).find("belongs to alloc-1/web/0") !=
          std::string::npos);
  }
  SUBCASE("corrupt manifest") {
    std::string text;
    {
      std::ifstream in(s.dir / kManifestFile);
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto at = text.find("\"generation\": 7");
    REQUIRE(at != std::string::npos);
    text.replace(at, 15, "\"generation\": 8");  // a bit flip that still parses
    std::ofstream(s.dir / kManifestFile) << text;
    CHECK(refusal(s.dir, {kStamp.owner, 8}).find("manifest.json is corrupt") != std::string::npos);
  }
  SUBCASE("no manifest: kNotFound; generation 0 (a snapshot older than manifests): unchecked") {
    fs::remove(s.dir / kManifestFile);
    auto r = verifySnapshot(s.dir, kStamp);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kNotFound);
    CHECK(verifySnapshot(s.dir, {kStamp.owner, 0}).ok());
  }
}

TEST_CASE("snapshot manifest: a full disk fails the write and leaves no partial file") {
  SnapshotFiles s;
  fs::path full = s.root / "full";
  fs::create_directories(full);
  REQUIRE(::mount("tmpfs", full.c_str(), "tmpfs", 0, "size=4k") == 0);
  {
    std::ofstream filler(full / "filler");
    filler << std::string(4096, 'f');
  }
  SnapshotManifest m{kStamp, {{"state", 60000, 0x1234u, 0, 0}}};
  auto r = writeSnapshotManifest(full, m);
  CHECK_FALSE(r.ok());
  MESSAGE("manifest onto a full disk: " << (r.ok() ? "ok" : r.error().describe()));
  CHECK_FALSE(fs::exists(full / "manifest.json.tmp"));
  CHECK_FALSE(fs::exists(full / kManifestFile));
  ::umount2(full.c_str(), MNT_DETACH);
}

}  // namespace s2z::vmm
