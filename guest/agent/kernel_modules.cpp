#include "guest/agent/kernel_modules.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/unique_fd.h"
#include "guest/agent/file_io.h"

namespace s2z::guest {

Result<void> loadModules(const std::string& orderFile, const std::string& dir) {
  auto order = readFile(orderFile);
  if (!order.ok()) {
    // A kernel with everything built in needs no list.
    if (order.error().errnum == ENOENT) return okResult();
    return order.error().wrap("load modules");
  }
  size_t pos = 0;
  while (pos < order->size()) {
    size_t end = order->find('\n', pos);
    if (end == std::string::npos) end = order->size();
    std::string name = trimRight(order->substr(pos, end - pos));
    pos = end + 1;
    if (name.empty()) continue;
    std::string path = dir + "/" + name + ".ko";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return systemError("load module " + name + ": open " + path);
    // glibc 2.36 has no wrapper for finit_module.
    if (::syscall(SYS_finit_module, fd.get(), "", 0) != 0 && errno != EEXIST) {
      return systemError("load module " + name);
    }
  }
  return okResult();
}

}  // namespace s2z::guest
