#include "agent/task_dirs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"

namespace s2z::agent {
namespace {

constexpr size_t kChunkBytes = 256 * 1024;

bool skipped(const std::filesystem::path& relative, const std::vector<std::string>& skip) {
  for (const auto& s : skip) {
    const std::filesystem::path prefixPath(s);  // its iterators point into it
    auto it = relative.begin();
    bool prefix = true;
    for (auto sIt = prefixPath.begin(); sIt != prefixPath.end(); ++sIt, ++it) {
      if (it == relative.end() || *it != *sIt) {
        prefix = false;
        break;
      }
    }
    if (prefix) return true;
  }
  return false;
}

}  // namespace

TaskDirSync::Tree TaskDirSync::scan() {
  Tree tree;
  hostPaths_.clear();
  for (const auto& dir : dirs_) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir.host, ec)) continue;
    auto it = std::filesystem::recursive_directory_iterator(
        dir.host, std::filesystem::directory_options::skip_permission_denied, ec);
    for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      auto relative = it->path().lexically_relative(dir.host);
      if (skipped(relative, dir.skip)) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) != 0) continue;  // gone meanwhile
      Entry e;
      if (S_ISDIR(st.st_mode)) {
        e.kind = pb::CopyFile::DIRECTORY;
      } else if (S_ISLNK(st.st_mode)) {
        e.kind = pb::CopyFile::SYMLINK;
        e.linkTarget = std::filesystem::read_symlink(it->path(), ec).string();
      } else if (S_ISREG(st.st_mode)) {
        e.kind = pb::CopyFile::FILE;
        e.size = static_cast<uint64_t>(st.st_size);
        e.mtimeNs = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
      } else {
        continue;  // FIFOs, sockets, devices: nothing a guest could use
      }
      e.mode = st.st_mode & 07777;
      e.uid = st.st_uid;
      e.gid = st.st_gid;
      std::string guestPath = dir.guest + "/" + relative.generic_string();
      tree[guestPath] = e;
      hostPaths_[guestPath] = it->path();
    }
  }
  return tree;
}

Result<uint64_t> TaskDirSync::send(GuestChannel& channel, const std::string& guestPath,
                                   const Entry& entry, std::chrono::milliseconds timeout) const {
  pb::Request request;
  auto* f = request.mutable_copy_file();
  f->set_path(guestPath);
  f->set_kind(static_cast<pb::CopyFile::Kind>(entry.kind));
  f->set_mode(entry.mode);
  f->set_uid(entry.uid);
  f->set_gid(entry.gid);
  f->set_link_target(entry.linkTarget);
  if (entry.kind != pb::CopyFile::FILE) {
    auto done = channel.call(request, timeout);
    if (!done.ok()) return done.error();
    return uint64_t{0};
  }
  const auto& host = hostPaths_.at(guestPath);
  UniqueFd in(::open(host.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in) return systemError("open " + host.string());
  f->set_file_size(entry.size);
  std::string chunk;
  uint64_t offset = 0;
  do {
    chunk.resize(kChunkBytes);
    ssize_t n = ::pread(in.get(), chunk.data(), chunk.size(), static_cast<off_t>(offset));
    if (n < 0) return systemError("read " + host.string());
    chunk.resize(static_cast<size_t>(n));
    // A file that shrank while being sent ends here; the next sync sees it again.
    if (n == 0 && offset < entry.size) f->set_file_size(offset);
    f->set_offset(offset);
    f->set_data(chunk);
    auto done = channel.call(request, timeout);
    if (!done.ok()) return done.error();
    offset += static_cast<uint64_t>(n);
  } while (offset < f->file_size() && !chunk.empty());
  return offset;
}

Result<SyncStats> TaskDirSync::sync(GuestChannel& channel, std::chrono::milliseconds timeout) {
  Tree now = scan();
  SyncStats stats;
  for (const auto& [path, entry] : now) {
    auto old = synced_.find(path);
    if (old != synced_.end() && old->second == entry) continue;
    if (entry.kind == pb::CopyFile::FILE && entry.size > kMaxFileBytes) {
      if (old == synced_.end() || !(old->second == entry)) {
        spdlog::warn("task file {} ({} bytes) is larger than {} bytes: not copied into the guest",
                     path, entry.size, kMaxFileBytes);
      }
      synced_[path] = entry;
      continue;
    }
    auto sent = send(channel, path, entry, timeout);
    if (!sent.ok()) return sent.error().wrap("copy " + path);
    synced_[path] = entry;
    ++stats.copied;
    stats.bytes += *sent;
  }
  // Children sort after their parents: remove from the end.
  for (auto it = synced_.rbegin(); it != synced_.rend();) {
    if (now.count(it->first)) {
      ++it;
      continue;
    }
    pb::Request request;
    request.mutable_remove_path()->set_path(it->first);
    auto done = channel.call(request, timeout);
    if (!done.ok()) return done.error().wrap("remove " + it->first);
    ++stats.removed;
    it = std::make_reverse_iterator(synced_.erase(std::next(it).base()));
  }
  return stats;
}

}  // namespace s2z::agent
