#include "guest/agent/path_in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace s2z::guest {

UniqueFd openInRoot(int rootFd, const std::string& path, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT;
  // glibc 2.36 has no openat2 wrapper.
  return UniqueFd(static_cast<int>(::syscall(SYS_openat2, rootFd, path.c_str(), &how, sizeof how)));
}

Result<UniqueFd> makeDirsInRoot(int rootFd, const std::string& path) {
  std::string done = "/";
  UniqueFd dir = openInRoot(rootFd, done, O_DIRECTORY);
  if (!dir) return systemError("open the root");
  size_t at = 0;
  while (at < path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string name = path.substr(at, slash - at);
    at = slash + 1;
    if (name.empty() || name == ".") continue;
    if (name == "..") return makeError(ErrorCode::kInvalidArgument, "path " + path + " has \"..\"");
    done += (done.back() == '/' ? "" : "/") + name;
    // The parent is an O_PATH fd, which mkdirat accepts; an existing
    // symlink is then followed inside the root by openInRoot.
    if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) return systemError("mkdir " + done);
    dir = openInRoot(rootFd, done, O_DIRECTORY);
    if (!dir) return systemError("open " + done);
  }
  return dir;
}

}  // namespace s2z::guest
