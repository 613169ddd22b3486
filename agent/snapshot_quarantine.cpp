#include "agent/snapshot_quarantine.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <spdlog/spdlog.h>

#include "agent/run_dir.h"

namespace s2z::agent {
namespace fs = std::filesystem;
namespace {

Result<void> makeOwnerOnlyDir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return okResult();
  return systemError("create " + dir.string());
}

// UTC to the nanosecond, so names sort by time: pruning by name must never
// take a newer entry for an older one (with whole seconds, a name freed by
// pruning could be reused within the same second and sort first).
std::string entryName(const std::string& taskId) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() % 1000000000;
  std::tm utc{};
  gmtime_r(&t, &utc);
  char stamp[48];
  size_t n = std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
  std::snprintf(stamp + n, sizeof stamp - n, ".%09lldZ", static_cast<long long>(ns));
  return std::string(stamp) + "-" + taskIdHash(taskId);
}

void pruneOldest(const fs::path& root, size_t kept) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(root, ec)) entries.push_back(e.path());
  if (entries.size() <= kept) return;
  std::sort(entries.begin(), entries.end());  // names start with the time
  for (size_t i = 0; i + kept < entries.size(); ++i) {
    fs::remove_all(entries[i], ec);
    spdlog::info("quarantine: removed {} (only the newest {} are kept){}", entries[i].string(), kept,
                 ec ? ": " + ec.message() : "");
  }
}

}  // namespace

Result<fs::path> quarantineSnapshot(const std::vector<fs::path>& files, const fs::path& quarantineRoot,
                                    const std::string& taskId, size_t kept) {
  S2Z_TRY(makeOwnerOnlyDir(quarantineRoot), "quarantine");
  fs::path entry = quarantineRoot / entryName(taskId);
  for (int n = 1; ::mkdir(entry.c_str(), 0700) != 0; ++n) {
    if (errno != EEXIST || n > 100) return systemError("quarantine: create " + entry.string());
    entry = quarantineRoot / (entryName(taskId) + "." + std::to_string(n));
  }
  for (const auto& file : files) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(file, ec))) continue;
    fs::rename(file, entry / file.filename(), ec);
    if (ec) return systemError("quarantine: move " + file.string() + " to " + entry.string(), ec.value());
  }
  spdlog::warn("instance {}: snapshot quarantined in {}", taskId, entry.string());
  pruneOldest(quarantineRoot, std::max<size_t>(kept, 1));
  return entry;
}

}  // namespace s2z::agent
