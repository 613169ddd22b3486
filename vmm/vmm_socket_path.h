// The path a VMM is told to bind a unix socket at. Every VMM runs with the
// task's run dir as its working directory and every socket it binds lives
// there, so when the absolute path does not fit sockaddr_un (108 bytes: a
// deep Nomad data dir) the VMM gets the file name alone. The host side
// reaches the socket by its absolute path through common/unix_socket.h.
#pragma once

#include <sys/un.h>

#include <filesystem>
#include <string>

namespace s2z::vmm {

// `socket` must be a file directly in the VMM's run dir.
inline std::string vmmBindPath(const std::filesystem::path& socket) {
  std::string s = socket.string();
  if (s.size() >= sizeof(sockaddr_un::sun_path)) s = socket.filename().string();
  return s;
}

}  // namespace s2z::vmm
