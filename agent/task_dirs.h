// The task's directories in the guest: Nomad's local/ and secrets/ of the
// task and the allocation's shared alloc/ appear as /local, /secrets and
// /alloc inside the workload's root. Nothing is shared (a shared filesystem
// breaks snapshots): every entry is copied through the guest agent
// (CopyFile, RemovePath), at start, then whenever it changes on the host
// (templates re-rendered by Nomad), and right after each wake for what
// changed while the task slept. Writes the workload makes there stay in the
// guest.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "agent/guest_channel.h"
#include "common/result.h"

namespace s2z::agent {

struct TaskDirMapping {
  std::filesystem::path host;   // e.g. <alloc_dir>/<task>/local; may not exist yet
  std::string guest;            // "/local", "/secrets" or "/alloc"
  std::vector<std::string> skip;  // host paths relative to `host` left out, with what is below
};

struct SyncStats {
  size_t copied = 0;   // files, directories and symlinks sent
  size_t removed = 0;
  uint64_t bytes = 0;
};

class TaskDirSync {
 public:
  // Files above this are left out (with a warning): the channel is for
  // configuration, secrets and small artifacts, not bulk data.
  static constexpr uint64_t kMaxFileBytes = 64ull << 20;

  explicit TaskDirSync(std::vector<TaskDirMapping> dirs) : dirs_(std::move(dirs)) {}

  // Sends what is new or changed since the last sync that succeeded for it
  // (all of it the first time) and removes in the guest what is gone. Stops
  // at the first error; what was sent before it counts as synced.
  Result<SyncStats> sync(GuestChannel& channel, std::chrono::milliseconds timeout);

 private:
  struct Entry {
    int kind = 0;  // pb::CopyFile::Kind
    uint32_t mode = 0, uid = 0, gid = 0;
    uint64_t size = 0;
    int64_t mtimeNs = 0;
    std::string linkTarget;
    bool operator==(const Entry&) const = default;
  };
  using Tree = std::map<std::string, Entry>;  // guest path -> entry; parents sort first

  Tree scan();  // also refreshes hostPaths_
  Result<uint64_t> send(GuestChannel& channel, const std::string& guestPath, const Entry& entry,
                        std::chrono::milliseconds timeout) const;

  std::vector<TaskDirMapping> dirs_;
  std::map<std::string, std::filesystem::path> hostPaths_;  // of the last scan
  Tree synced_;
};

}  // namespace s2z::agent
