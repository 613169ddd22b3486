#include "agent/unix_connect.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>

namespace s2z::agent {

Result<UniqueFd> connectUnix(const std::filesystem::path& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return systemError("socket");
  UniqueFd dir;
  std::string target = path.string();
  sockaddr_un addr{};
  if (target.size() >= sizeof addr.sun_path) {
    dir.reset(::open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return systemError("open " + path.parent_path().string());
    target = "/proc/self/fd/" + std::to_string(dir.get()) + "/" + path.filename().string();
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, target.c_str(), target.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return systemError("connect " + path.string());
  }
  return fd;
}

}  // namespace s2z::agent
