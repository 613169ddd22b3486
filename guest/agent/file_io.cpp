#include "guest/agent/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "common/unique_fd.h"

namespace s2z::guest {

Result<std::string> readFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return systemError("open " + path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return systemError("read " + path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<void> writeFile(const std::string& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return systemError("open " + path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return systemError("write " + path);
    done += static_cast<size_t>(n);
  }
  return okResult();
}

Result<void> replaceFile(const std::string& path, const std::string& data) {
  std::string tmp = path + ".s2z-tmp";
  S2Z_TRY(writeFile(tmp, data), "replace " + path);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = systemError("rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return e;
  }
  return okResult();
}

std::string trimRight(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

}  // namespace s2z::guest
