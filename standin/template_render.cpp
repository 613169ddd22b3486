#include "standin/template_render.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/unique_fd.h"

namespace s2z::standin {

Result<void> renderTemplate(const std::string& taskDir, const std::string& destination,
                            const std::string& data, unsigned perms) {
  std::filesystem::path rel = std::filesystem::path(destination).lexically_normal();
  if (rel.empty() || rel.is_absolute() || *rel.begin() == "..") {
    return makeError(ErrorCode::kInvalidArgument,
                     "template destination \"" + destination + "\" is outside the task dir");
  }
  std::filesystem::path target = std::filesystem::path(taskDir) / rel;
  std::error_code ec;
  std::filesystem::create_directories(target.parent_path(), ec);
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "create " + target.parent_path().string()};
  std::string temp = target.string() + ".tmp-render";
  {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, perms));
    if (!fd) return systemError("write " + temp);
    if (::fchmod(fd.get(), perms) != 0) return systemError("chmod " + temp);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) return systemError("write " + temp);
      done += static_cast<size_t>(n);
    }
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) return systemError("rename " + target.string());
  return okResult();
}

}  // namespace s2z::standin
