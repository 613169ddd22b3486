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
#include <nlohmann/json.hpp>
#include <zlib.h>

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

// manifest.json around `body` with a checksum that matches it, as a writer
// with a bug (or a hand edit with the checksum redone) would leave it.
std::string withValidChecksum(const nlohmann::json& body) {
  std::string text = body.dump();
  auto crc = ::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(text.data()),
                     static_cast<uInt>(text.size()));
  return nlohmann::json{{"manifest", body}, {"crc32", crc}}.dump();
}

std::string decodeRefusal(const std::string& text) {
  auto r = decodeSnapshotManifest(text);
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

TEST_CASE("snapshot manifest text: what is encoded decodes the same; every malformed text is refused, never thrown") {
  SnapshotManifest m{kStamp, {{"snapshot/state", 60000, 0x1234u, 0, 0}, {"/run/x/guest-ram", 1 << 28, {}, 42, -5}}};
  auto back = decodeSnapshotManifest(encodeSnapshotManifest(m));
  REQUIRE(back.ok());
  CHECK(back->stamp.owner == m.stamp.owner);
  CHECK(back->stamp.generation == m.stamp.generation);
  REQUIRE(back->files.size() == 2);
  CHECK(back->files[0].crc32 == m.files[0].crc32);
  CHECK(back->files[1].path == m.files[1].path);
  CHECK(back->files[1].ctimeNs == -5);

  const nlohmann::json good = nlohmann::json::parse(encodeSnapshotManifest(m))["manifest"];
  CHECK(decodeRefusal(withValidChecksum(good)) == "accepted");
  SUBCASE("a format that is not the number 1 (it was an uncaught exception: the plugin died)") {
    for (const nlohmann::json& format : {nlohmann::json("1"), nlohmann::json(2), nlohmann::json(nullptr)}) {
      auto body = good;
      body["format"] = format;
      CHECK(decodeRefusal(withValidChecksum(body)).find("unknown format") != std::string::npos);
    }
    CHECK(decodeRefusal(withValidChecksum(nlohmann::json::array({1, 2}))).find("unknown format") !=
          std::string::npos);
  }
  SUBCASE("fields of the wrong type or missing") {
    auto body = good;
    body["generation"] = "7";
    CHECK(decodeRefusal(withValidChecksum(body)).find("bad field") != std::string::npos);
    body = good;
    body["files"][0].erase("size");
    CHECK(decodeRefusal(withValidChecksum(body)).find("bad field") != std::string::npos);
  }
  SUBCASE("numbers that are not what the field holds (a float size was undefined behaviour; fuzz found it)") {
    auto refusedWith = [&](const char* field, const nlohmann::json& value) {
      auto body = good;
      if (std::string(field) == "generation") {
        body[field] = value;
      } else {
        body["files"][std::string(field) == "crc32" ? 0 : 1][field] = value;
      }
      return decodeRefusal(withValidChecksum(body));
    };
    CHECK(refusedWith("size", 3.33333e89).find("size is not a non-negative integer") != std::string::npos);
    CHECK(refusedWith("generation", -1).find("generation is not a non-negative integer") != std::string::npos);
    CHECK(refusedWith("crc32", uint64_t{1} << 32).find("crc32 is out of range") != std::string::npos);
    CHECK(refusedWith("ctime_ns", UINT64_MAX).find("ctime_ns is not a 64-bit integer") != std::string::npos);
    CHECK(refusedWith("inode", 1.5).find("inode is not a non-negative integer") != std::string::npos);
    auto body = good;
    body["files"][0] = 7;
    CHECK(decodeRefusal(withValidChecksum(body)).find("not an object") != std::string::npos);
  }
  SUBCASE("nested deeper than the format: dropped while parsing, refused") {
    auto body = good;
    body["files"][0]["path"] = nlohmann::json::parse(std::string(2000, '[') + std::string(2000, ']'));
    CHECK(decodeRefusal(withValidChecksum(body)).find("does not parse") != std::string::npos);
  }
  SUBCASE("a checksum beyond 32 bits whose low bits match") {
    auto doc = nlohmann::json::parse(withValidChecksum(good));
    doc["crc32"] = doc["crc32"].get<uint64_t>() + (uint64_t{1} << 32);
    CHECK(decodeRefusal(doc.dump()).find("is corrupt") != std::string::npos);
  }
  SUBCASE("larger than any manifest, empty, not JSON") {
    CHECK(decodeRefusal(std::string(kManifestMaxBytes + 1, ' ')).find("larger than any manifest") !=
          std::string::npos);
    CHECK(decodeRefusal("").find("does not parse") != std::string::npos);
    CHECK(decodeRefusal("{\"manifest\": ").find("does not parse") != std::string::npos);
  }
}

TEST_CASE("snapshot manifest: a file that is not a regular file is refused, not read") {
  SnapshotFiles s;
  REQUIRE(s.write(kStamp).ok());
  fs::remove(s.dir / "state");
  REQUIRE(::mkfifo((s.dir / "state").c_str(), 0600) == 0);  // reading it would block for ever
  CHECK(refusal(s.dir, kStamp).find("state is not a regular file") != std::string::npos);
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
