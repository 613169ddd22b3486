// Guest RAM write-back and page-out: see guest_ram_release.h for the facts.
#include "vmm/guest_ram_release.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/unique_fd.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

namespace s2z::vmm {
namespace {

// The VMM's mappings of `file` ([start, end) ranges) from /proc/<pid>/maps.
Result<std::vector<iovec>> mappingsOf(pid_t pid, const std::filesystem::path& file) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  if (!maps) return systemError("open /proc/" + std::to_string(pid) + "/maps");
  std::vector<iovec> ranges;
  const std::string name = file.string();
  for (std::string line; std::getline(maps, line);) {
    if (line.size() < name.size() || line.compare(line.size() - name.size(), name.size(), name) != 0) {
      continue;
    }
    std::istringstream fields(line);
    std::string range;
    fields >> range;
    auto dash = range.find('-');
    if (dash == std::string::npos) continue;
    uint64_t start = std::stoull(range.substr(0, dash), nullptr, 16);
    uint64_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
    ranges.push_back({reinterpret_cast<void*>(start), static_cast<size_t>(end - start)});
  }
  return ranges;
}

Result<UniqueFd> openRam(const std::filesystem::path& ramFile) {
  UniqueFd fd(::open(ramFile.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return systemError("open " + ramFile.string());
  return fd;
}

Result<void> dropCache(int fd, const std::filesystem::path& ramFile) {
  int err = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  if (err != 0) return Error{ErrorCode::kSystem, err, "drop the page cache of " + ramFile.string()};
  return okResult();
}

// RssFile of /proc/<pid>/status: file pages the process maps; 0 if unreadable.
uint64_t rssFileBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("RssFile:", 0) != 0) continue;
    std::istringstream kib(line.substr(8));
    uint64_t value = 0;
    kib >> value;
    return value * 1024;
  }
  return 0;
}

uint64_t cachedOrZero(int fd) {
  auto bytes = cachedBytes(fd);
  return bytes.ok() ? *bytes : 0;
}

}  // namespace

Result<uint64_t> cachedBytes(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return systemError("fstat");
  if (st.st_size == 0) return uint64_t{0};
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return systemError("mmap for mincore");
  const long page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> resident((size + page - 1) / page);
  int rc = ::mincore(map, size, resident.data());
  int err = errno;
  ::munmap(map, size);
  if (rc != 0) return Error{ErrorCode::kSystem, err, "mincore"};
  uint64_t pages = 0;
  for (unsigned char r : resident) pages += r & 1;
  return pages * static_cast<uint64_t>(page);
}

Result<RamRelease> releaseGuestRam(int pidfd, pid_t pid, const std::filesystem::path& ramFile,
                                   RamAdvice advice) {
  auto fd = openRam(ramFile);
  if (!fd.ok()) return fd.error();
  RamRelease r;
  r.cachedBefore = cachedOrZero(fd->get());
  r.mappedBefore = rssFileBytes(pid);
  if (::fdatasync(fd->get()) != 0) return systemError("write back " + ramFile.string());
  auto ranges = mappingsOf(pid, ramFile);
  if (!ranges.ok()) return ranges.error();
  if (ranges->empty()) {
    return makeError(ErrorCode::kVmmError, "the VMM has no mapping of " + ramFile.string());
  }
  if (advice == RamAdvice::kPageOut) {
    // One call pages out every range; it returns the bytes it advised.
    long advised = ::syscall(SYS_process_madvise, pidfd, ranges->data(), ranges->size(), MADV_PAGEOUT, 0U);
    if (advised < 0) return systemError("process_madvise(MADV_PAGEOUT) on the VMM's guest RAM");
  }
  r.mappedAfter = rssFileBytes(pid);
  r.cachedAfter = cachedOrZero(fd->get());
  return r;
}

Result<RamRelease> dropGuestRamCache(const std::filesystem::path& ramFile) {
  auto fd = openRam(ramFile);
  if (!fd.ok()) return fd.error();
  RamRelease r;
  r.cachedBefore = cachedOrZero(fd->get());
  if (::fdatasync(fd->get()) != 0) return systemError("write back " + ramFile.string());
  if (auto dropped = dropCache(fd->get(), ramFile); !dropped.ok()) return dropped.error();
  r.cachedAfter = cachedOrZero(fd->get());
  return r;
}

}  // namespace s2z::vmm
