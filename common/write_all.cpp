#include "common/write_all.h"

#include <unistd.h>

#include <cerrno>

namespace s2z {

Result<void> writeAll(int fd, std::string_view bytes, const std::string& what) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return systemError("write " + what);
    }
    done += static_cast<size_t>(n);
  }
  return okResult();
}

}  // namespace s2z
