#include "agent/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>

namespace s2z::agent {

Result<NetnsHandle> NetnsHandle::open(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error{ErrorCode::kNotFound, errno, "netns " + path.string() + " not found"};
    return systemError("open netns " + path.string());
  }
  // NS_GET_NSTYPE: the namespace type behind an nsfs fd (ENOTTY otherwise).
  int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    return makeError(ErrorCode::kInvalidArgument, path.string() + " is not a network namespace");
  }
  return NetnsHandle(std::move(fd), path);
}

Result<void> NetnsHandle::enter() const {
  if (::setns(fd_.get(), CLONE_NEWNET) != 0) return systemError("setns " + path_.string());
  return okResult();
}

}  // namespace s2z::agent
