#include "vmm/cloud_hypervisor/ch_snapshot_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/unique_fd.h"

namespace s2z::vmm::ch {
namespace fs = std::filesystem;
namespace {

Result<void> fsyncPath(const fs::path& path, bool directory) {
  UniqueFd fd(::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC));
  if (!fd) return systemError("open " + path.string());
  if (::fsync(fd.get()) != 0) return systemError("fsync " + path.string());
  return okResult();
}

fs::path withSuffix(const fs::path& dir, const char* suffix) {
  fs::path clean = dir.lexically_normal();
  if (!clean.has_filename()) clean = clean.parent_path();
  return clean.parent_path() / (clean.filename().string() + suffix);
}

}  // namespace

Result<fs::path> prepareTempDir(const fs::path& finalDir) {
  fs::path temp = withSuffix(finalDir, ".tmp");
  std::error_code ec;
  fs::remove_all(temp, ec);
  if (ec) return systemError("remove " + temp.string(), ec.value());
  fs::create_directories(temp.parent_path(), ec);
  if (ec) return systemError("create " + temp.parent_path().string(), ec.value());
  // Guest memory goes in here: owner-only from the start.
  if (::mkdir(temp.c_str(), 0700) != 0) return systemError("create " + temp.string());
  return temp;
}

Result<uint64_t> commitSnapshotDir(const fs::path& tempDir, const fs::path& finalDir) {
  S2Z_TRY(checkSnapshotDir(tempDir), "commit snapshot");
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(tempDir, ec)) {
    if (!entry.is_regular_file()) continue;
    S2Z_TRY(fsyncPath(entry.path(), false), "commit snapshot");
    bytes += entry.file_size();
  }
  if (ec) return systemError("list " + tempDir.string(), ec.value());
  S2Z_TRY(fsyncPath(tempDir, true), "commit snapshot");

  fs::path old = withSuffix(finalDir, ".old");
  fs::remove_all(old, ec);
  bool hadOld = fs::exists(finalDir);
  if (hadOld) {
    fs::rename(finalDir, old, ec);
    if (ec) return systemError("move aside " + finalDir.string(), ec.value());
  }
  fs::rename(tempDir, finalDir, ec);
  if (ec) {
    int err = ec.value();
    if (hadOld) fs::rename(old, finalDir, ec);  // put the previous snapshot back
    return systemError("rename " + tempDir.string() + " to " + finalDir.string(), err);
  }
  fs::path parent = finalDir.lexically_normal().parent_path();
  S2Z_TRY(fsyncPath(parent.empty() ? fs::path(".") : parent, true), "commit snapshot");
  if (hadOld) removeQuietly(old);
  return bytes;
}

Result<void> writeManifestFor(const fs::path& dir, const SnapshotStamp& stamp,
                              const fs::path& ramFile) {
  // Bigger files are guest memory: checksumming them at every restore would
  // cost more than the restore (snapshot_manifest.h).
  constexpr uint64_t kContentCheckLimit = 16 << 20;
  SnapshotManifest manifest{stamp, {}};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file() || entry.path().filename() == kManifestFile) continue;
    FileCheck check = entry.file_size() <= kContentCheckLimit ? FileCheck::kContent : FileCheck::kIdentity;
    auto file = describeSnapshotFile(dir, entry.path().filename(), check);
    if (!file.ok()) return file.error().wrap("snapshot manifest");
    manifest.files.push_back(*file);
  }
  if (ec) return systemError("list " + dir.string(), ec.value());
  if (!ramFile.empty()) {
    auto ram = describeSnapshotFile(dir, ramFile, FileCheck::kIdentity);
    if (!ram.ok()) return ram.error().wrap("snapshot manifest");
    manifest.files.push_back(*ram);
  }
  return writeSnapshotManifest(dir, manifest);
}

Result<void> checkSnapshotDir(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : {"config.json", "state.json"}) {
    if (!fs::is_regular_file(dir / name, ec)) {
      return makeError(ErrorCode::kNotFound,
                       "no cloud-hypervisor snapshot in " + dir.string() + " (" + name + " missing)");
    }
  }
  return okResult();
}

void removeQuietly(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

}  // namespace s2z::vmm::ch
