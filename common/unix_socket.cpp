#include "common/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace s2z {
Result<void> unixSocketAddress(const std::filesystem::path& path, sockaddr_un& addr, UniqueFd& dir) {
  std::string target = path.string();
  if (target.size() >= sizeof addr.sun_path) {
    dir.reset(::open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return systemError("open " + path.parent_path().string());
    target = "/proc/self/fd/" + std::to_string(dir.get()) + "/" + path.filename().string();
    if (target.size() >= sizeof addr.sun_path) {
      return makeError(ErrorCode::kInvalidArgument, "socket file name too long: " + path.string());
    }
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, target.c_str(), target.size() + 1);
  return okResult();
}

Result<UniqueFd> connectUnix(const std::filesystem::path& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return systemError("socket");
  sockaddr_un addr{};
  UniqueFd dir;
  S2Z_TRY(unixSocketAddress(path, addr, dir), "connect");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return systemError("connect " + path.string());
  }
  return fd;
}

Result<UniqueFd> listenUnix(const std::filesystem::path& path, int backlog) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return systemError("socket");
  sockaddr_un addr{};
  UniqueFd dir;
  S2Z_TRY(unixSocketAddress(path, addr, dir), "listen");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return systemError("bind " + path.string());
  }
  // The socket file's mode is what guards it; the umask is process-wide and
  // other threads' files must not change with it.
  if (::chmod(addr.sun_path, 0600) != 0 || ::listen(fd.get(), backlog) != 0) {
    Error e = systemError("listen on " + path.string());
    ::unlink(addr.sun_path);
    return e;
  }
  return fd;
}

}  // namespace s2z
