#include "vmm/snapshot_manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/unique_fd.h"
#include "common/write_all.h"

namespace s2z::vmm {
namespace fs = std::filesystem;
namespace {

constexpr int kFormat = 1;
// The parser's depth of a file entry's fields: document 0, "manifest" 1,
// "files" 2, an entry 3, its fields 4.
constexpr int kMaxDepth = 4;
constexpr char kManifestTemp[] = "manifest.json.tmp";

Error dataLoss(const fs::path& dir, const std::string& why) {
  return makeError(ErrorCode::kDataLoss, "snapshot " + dir.string() + ": " + why);
}

fs::path resolve(const fs::path& dir, const fs::path& path) {
  return path.is_absolute() ? path : dir / path;
}

int64_t ctimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
}

Result<uint32_t> crcOfFile(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return systemError("open " + path.string());
  uLong crc = ::crc32(0L, Z_NULL, 0);
  std::array<unsigned char, 64 * 1024> buf{};
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return systemError("read " + path.string());
    }
    if (n == 0) break;
    crc = ::crc32(crc, buf.data(), static_cast<uInt>(n));
  }
  return static_cast<uint32_t>(crc);
}

nlohmann::json body(const SnapshotManifest& m) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : m.files) {
    nlohmann::json j = {{"path", f.path.string()}, {"size", f.size}};
    if (f.crc32) {
      j["crc32"] = *f.crc32;
    } else {
      j["inode"] = f.inode;
      j["ctime_ns"] = f.ctimeNs;
    }
    files.push_back(std::move(j));
  }
  return {{"format", kFormat},
          {"owner", m.stamp.owner},
          {"generation", m.stamp.generation},
          {"files", std::move(files)}};
}

uint32_t crcOfText(const std::string& text) {
  return static_cast<uint32_t>(
      ::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(text.data()),
              static_cast<uInt>(text.size())));
}

// A field of one JSON type, or a refusal naming it. nlohmann's get<> would
// convert a float such as 3e89 into an integer (undefined behaviour) and
// truncate a large integer silently; a manifest holds neither.
struct BadField : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const nlohmann::json& member(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) throw BadField(std::string("an entry is not an object (reading ") + key + ")");
  auto it = object.find(key);
  if (it == object.end()) throw BadField(std::string(key) + " is missing");
  return *it;
}

std::string stringField(const nlohmann::json& object, const char* key) {
  const auto& v = member(object, key);
  if (!v.is_string()) throw BadField(std::string(key) + " is not a string");
  return v.get<std::string>();
}

uint64_t unsignedField(const nlohmann::json& object, const char* key, uint64_t max = UINT64_MAX) {
  const auto& v = member(object, key);
  if (!v.is_number_unsigned()) throw BadField(std::string(key) + " is not a non-negative integer");
  auto x = v.get<uint64_t>();
  if (x > max) throw BadField(std::string(key) + " is out of range");
  return x;
}

int64_t signedField(const nlohmann::json& object, const char* key) {
  const auto& v = member(object, key);
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX)) {
    throw BadField(std::string(key) + " is not a 64-bit integer");
  }
  return v.get<int64_t>();
}

SnapshotManifest parse(const nlohmann::json& b) {
  SnapshotManifest m;
  m.stamp.owner = stringField(b, "owner");
  m.stamp.generation = unsignedField(b, "generation");
  const auto& files = member(b, "files");
  if (!files.is_array()) throw BadField("files is not a list");
  for (const auto& j : files) {
    ManifestFile f;
    f.path = stringField(j, "path");
    f.size = unsignedField(j, "size");
    if (j.is_object() && j.contains("crc32")) {
      f.crc32 = static_cast<uint32_t>(unsignedField(j, "crc32", UINT32_MAX));
    } else {
      f.inode = unsignedField(j, "inode");
      f.ctimeNs = signedField(j, "ctime_ns");
    }
    m.files.push_back(std::move(f));
  }
  return m;
}

Result<void> checkFile(const fs::path& dir, const ManifestFile& f) {
  fs::path path = resolve(dir, f.path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return dataLoss(dir, f.path.string() + " is missing (" + std::strerror(errno) + ")");
  }
  // Only what a snapshot writes: a regular file (a device or FIFO named by
  // a damaged manifest would be read forever).
  if (!S_ISREG(st.st_mode)) return dataLoss(dir, f.path.string() + " is not a regular file");
  auto size = static_cast<uint64_t>(st.st_size);
  if (size != f.size) {
    return dataLoss(dir, f.path.string() + " is " + std::to_string(size) + " bytes, the manifest says " +
                             std::to_string(f.size) + (size < f.size ? " (truncated)" : ""));
  }
  if (f.crc32) {
    auto crc = crcOfFile(path);
    if (!crc.ok()) return crc.error().wrap("verify snapshot");
    if (*crc != *f.crc32) return dataLoss(dir, f.path.string() + " is corrupt (checksum differs)");
    return okResult();
  }
  if (st.st_ino != f.inode) return dataLoss(dir, f.path.string() + " is another file than the snapshot's");
  if (ctimeNs(st) != f.ctimeNs) {
    return dataLoss(dir, f.path.string() + " changed after the snapshot (the guest ran on it, or it was rewritten)");
  }
  return okResult();
}

}  // namespace

Result<ManifestFile> describeSnapshotFile(const fs::path& dir, const fs::path& path, FileCheck check) {
  fs::path full = resolve(dir, path);
  struct stat st {};
  if (::stat(full.c_str(), &st) != 0) return systemError("stat " + full.string());
  ManifestFile f;
  f.path = path;
  f.size = static_cast<uint64_t>(st.st_size);
  if (check == FileCheck::kContent) {
    auto crc = crcOfFile(full);
    if (!crc.ok()) return crc.error();
    f.crc32 = *crc;
  } else {
    f.inode = st.st_ino;
    f.ctimeNs = ctimeNs(st);
  }
  return f;
}

Result<void> writeSnapshotManifest(const fs::path& dir, const SnapshotManifest& manifest) {
  std::string text = encodeSnapshotManifest(manifest);
  fs::path temp = dir / kManifestTemp;
  auto fail = [&](const Error& e) -> Error {
    std::error_code ignored;
    fs::remove(temp, ignored);
    return e.wrap("write snapshot manifest");
  };
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fail(systemError("create " + temp.string()));
  if (auto w = writeAll(fd.get(), text, temp.string()); !w.ok()) return fail(w.error());
  if (::fsync(fd.get()) != 0) return fail(systemError("fsync " + temp.string()));
  fd.reset();
  if (::rename(temp.c_str(), (dir / kManifestFile).c_str()) != 0) {
    return fail(systemError("rename " + temp.string()));
  }
  UniqueFd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirFd || ::fsync(dirFd.get()) != 0) return systemError("fsync " + dir.string());
  return okResult();
}

std::string encodeSnapshotManifest(const SnapshotManifest& manifest) {
  nlohmann::json b = body(manifest);
  nlohmann::json doc = {{"manifest", b}, {"crc32", crcOfText(b.dump())}};
  return doc.dump(2) + "\n";
}

Result<SnapshotManifest> decodeSnapshotManifest(std::string_view text) {
  auto refuse = [](const std::string& why) { return makeError(ErrorCode::kDataLoss, "manifest.json " + why); };
  if (text.size() > kManifestMaxBytes) {
    return refuse("is larger than any manifest (over " + std::to_string(kManifestMaxBytes) + " bytes)");
  }
  // Anything deeper than a file entry's fields is dropped while parsing
  // (never built), then refused.
  bool tooDeep = false;
  nlohmann::json::parser_callback_t keepShallow = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxDepth) tooDeep = true;
    return depth <= kMaxDepth;
  };
  auto doc = nlohmann::json::parse(text, keepShallow, /*allow_exceptions=*/false);
  if (doc.is_discarded() || tooDeep || !doc.is_object() || !doc.contains("manifest") || !doc.contains("crc32")) {
    return refuse("does not parse");
  }
  const nlohmann::json& b = doc["manifest"];
  if (!doc["crc32"].is_number_unsigned() || crcOfText(b.dump()) != doc["crc32"].get<uint64_t>()) {
    return refuse("is corrupt (checksum differs)");
  }
  const auto format = b.is_object() ? b.find("format") : b.end();
  if (format == b.end() || !format->is_number_integer() || format->get<int64_t>() != kFormat) {
    return refuse("has an unknown format");
  }
  try {
    return parse(b);
  } catch (const BadField& e) {
    return refuse(std::string("has a bad field: ") + e.what());
  }
}

Result<SnapshotManifest> readSnapshotManifest(const fs::path& dir) {
  fs::path path = dir / kManifestFile;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return makeError(ErrorCode::kNotFound, "no manifest in " + dir.string());
    return systemError("open " + path.string());
  }
  // One byte more than a manifest may have, so a longer file is refused whole.
  std::string text(kManifestMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  auto manifest = decodeSnapshotManifest(text);
  if (!manifest.ok()) return dataLoss(dir, manifest.error().message);
  return manifest;
}

Result<void> verifySnapshot(const fs::path& dir, const SnapshotStamp& expected) {
  if (expected.generation == 0) return okResult();
  auto manifest = readSnapshotManifest(dir);
  if (!manifest.ok()) return manifest.error();
  const SnapshotStamp& got = manifest->stamp;
  if (got.owner != expected.owner) {
    return dataLoss(dir, "it belongs to " + got.owner + ", not " + expected.owner);
  }
  if (got.generation != expected.generation) {
    return dataLoss(dir, std::string(got.generation < expected.generation ? "stale" : "unexpected") +
                             ": generation " + std::to_string(got.generation) + ", expected " +
                             std::to_string(expected.generation));
  }
  for (const auto& f : manifest->files) S2Z_TRY(checkFile(dir, f), "verify snapshot");
  return okResult();
}

Result<void> markRamInUse(const fs::path& ramFile) {
  // A timestamp update, not a write: no data moves. UTIME_NOW sets ctime too.
  struct timespec now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  if (::utimensat(AT_FDCWD, ramFile.c_str(), now, 0) != 0) return systemError("touch " + ramFile.string());
  return okResult();
}

}  // namespace s2z::vmm
