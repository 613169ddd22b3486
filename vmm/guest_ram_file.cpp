#include "vmm/guest_ram_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "common/unique_fd.h"

namespace s2z::vmm {
namespace {

// Allocates the whole file (unwritten extents on ext4/xfs: no data written);
// a filesystem without fallocate gets a sparse file of the right size.
Result<void> reserve(int fd, uint64_t bytes) {
  if (::fallocate(fd, 0, 0, static_cast<off_t>(bytes)) == 0) return okResult();
  if (errno != EOPNOTSUPP) {
    return systemError(errno == ENOSPC ? "no space for " + std::to_string(bytes >> 20) + " MiB"
                                       : std::string("fallocate"));
  }
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) return systemError("ftruncate");
  return okResult();
}

}  // namespace

std::filesystem::path guestRamPath(const std::filesystem::path& runDir) {
  return runDir / "guest-ram";
}

Result<void> createGuestRamFile(const std::filesystem::path& path, uint64_t bytes) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  // A VMM would create it 0644 (umask), or not at all (Cloud Hypervisor).
  UniqueFd ram(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!ram) return systemError("create " + path.string());
  if (auto r = reserve(ram.get(), bytes); !r.ok()) {
    std::filesystem::remove(path, ec);
    return r.error().wrap("guest RAM file " + path.string());
  }
  return okResult();
}

Result<void> syncGuestRam(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return systemError("open " + path.string());
  if (::fdatasync(fd.get()) != 0) return systemError("fdatasync " + path.string());
  return okResult();
}

}  // namespace s2z::vmm
