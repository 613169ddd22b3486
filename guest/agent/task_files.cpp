#include "guest/agent/task_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"

namespace s2z::guest {
namespace {

constexpr const char* kTaskDirs[] = {"/local", "/secrets", "/alloc"};
// A file being received; renamed over its name when complete.
constexpr const char* kPartialSuffix = ".s2z-partial";

// `path` split into components, if it is absolute, lies under one of the
// task dirs and has no "." or ".." component.
Result<std::vector<std::string>> checkedComponents(const std::string& path) {
  auto refuse = [&](const char* why) {
    return makeError(ErrorCode::kInvalidArgument, "task file path \"" + path + "\": " + why);
  };
  if (path.empty() || path[0] != '/') return refuse("not absolute");
  std::vector<std::string> parts;
  size_t at = 1;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(at, slash - at);
    if (part == "." || part == "..") return refuse("has . or ..");
    if (!part.empty()) parts.push_back(part);
    at = slash + 1;
  }
  bool inside = false;
  for (const char* dir : kTaskDirs) inside = inside || (!parts.empty() && "/" + parts[0] == dir);
  if (!inside) return refuse("not under /local, /secrets or /alloc");
  return parts;
}

// Walks from root to the parent of the last component, creating missing
// directories and never following a symlink, and returns the parent's fd.
Result<UniqueFd> openParent(const std::string& root, const std::vector<std::string>& parts) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return systemError("open " + root);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (::mkdirat(dir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
      return systemError("mkdir " + parts[i]);
    }
    UniqueFd next(::openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return systemError("open " + parts[i] + " (a directory, not a symlink)");
    dir = std::move(next);
  }
  return dir;
}

Result<void> setOwnerAndMode(int dirFd, const std::string& name, const agent::v1::CopyFile& f,
                             bool symlink) {
  if (::fchownat(dirFd, name.c_str(), f.uid(), f.gid(), AT_SYMLINK_NOFOLLOW) != 0) {
    return systemError("chown " + name);
  }
  if (!symlink && ::fchmodat(dirFd, name.c_str(), f.mode() & 07777, 0) != 0) {
    return systemError("chmod " + name);
  }
  return okResult();
}

// Removes name in dirFd, recursively for a directory.
Result<void> removeAt(int dirFd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? okResult() : systemError("stat " + name);
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd sub(::openat(dirFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) return systemError("open " + name);
    UniqueFd listFd(::dup(sub.get()));
    DIR* list = ::fdopendir(listFd.release());
    if (!list) return systemError("list " + name);
    std::vector<std::string> children;
    while (dirent* e = ::readdir(list)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") children.emplace_back(n);
    }
    ::closedir(list);
    for (const auto& child : children) S2Z_TRY(removeAt(sub.get(), child), name);
    if (::unlinkat(dirFd, name.c_str(), AT_REMOVEDIR) != 0) return systemError("rmdir " + name);
    return okResult();
  }
  if (::unlinkat(dirFd, name.c_str(), 0) != 0 && errno != ENOENT) return systemError("unlink " + name);
  return okResult();
}

}  // namespace

Result<void> copyTaskFile(const std::string& root, const agent::v1::CopyFile& f) {
  auto parts = checkedComponents(f.path());
  if (!parts.ok()) return parts.error();
  if (parts->size() == 1 && f.kind() == agent::v1::CopyFile::DIRECTORY) return okResult();  // a task dir itself
  if (parts->size() == 1) {
    return makeError(ErrorCode::kInvalidArgument, "task file path \"" + f.path() + "\": is a task dir");
  }
  auto parent = openParent(root, *parts);
  if (!parent.ok()) return parent.error().wrap("copy " + f.path());
  int dir = parent->get();
  const std::string& name = parts->back();
  switch (f.kind()) {
    case agent::v1::CopyFile::DIRECTORY: {
      struct stat st {};
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        S2Z_TRY(removeAt(dir, name), "copy " + f.path());
      }
      if (::mkdirat(dir, name.c_str(), 0700) != 0 && errno != EEXIST) return systemError("mkdir " + f.path());
      return setOwnerAndMode(dir, name, f, false);
    }
    case agent::v1::CopyFile::SYMLINK: {
      S2Z_TRY(removeAt(dir, name), "copy " + f.path());
      if (::symlinkat(f.link_target().c_str(), dir, name.c_str()) != 0) return systemError("symlink " + f.path());
      return setOwnerAndMode(dir, name, f, true);
    }
    default: {
      const std::string partial = name + kPartialSuffix;
      int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (f.offset() == 0 ? O_TRUNC : 0);
      UniqueFd out(::openat(dir, partial.c_str(), flags, 0600));
      if (!out) return systemError("write " + f.path());
      const std::string& data = f.data();
      size_t done = 0;
      while (done < data.size()) {
        ssize_t n = ::pwrite(out.get(), data.data() + done, data.size() - done,
                             static_cast<off_t>(f.offset() + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return systemError("write " + f.path());
        done += static_cast<size_t>(n);
      }
      if (f.offset() + data.size() < f.file_size()) return okResult();  // more chunks follow
      if (::ftruncate(out.get(), static_cast<off_t>(f.file_size())) != 0) return systemError("size " + f.path());
      S2Z_TRY(setOwnerAndMode(dir, partial, f, false), "copy " + f.path());
      struct stat st {};
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        S2Z_TRY(removeAt(dir, name), "copy " + f.path());
      }
      if (::renameat(dir, partial.c_str(), dir, name.c_str()) != 0) return systemError("rename " + f.path());
      return okResult();
    }
  }
}

Result<void> removeTaskPath(const std::string& root, const std::string& path) {
  auto parts = checkedComponents(path);
  if (!parts.ok()) return parts.error();
  if (parts->size() == 1) {
    return makeError(ErrorCode::kInvalidArgument, "task file path \"" + path + "\": is a task dir");
  }
  auto parent = openParent(root, *parts);
  if (!parent.ok()) return parent.error().wrap("remove " + path);
  S2Z_TRY(removeAt(parent->get(), parts->back()), "remove " + path);
  return okResult();
}

}  // namespace s2z::guest
