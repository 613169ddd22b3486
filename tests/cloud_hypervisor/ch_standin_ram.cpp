#include "tests/cloud_hypervisor/ch_standin_ram.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/unique_fd.h"

namespace s2z::tests::ch {

using nlohmann::json;

StandinRam::~StandinRam() {
  for (const auto& m : mappings_) ::munmap(m.addr, m.size);
}

Result<void> StandinRam::map(const json& memoryConfig) {
  for (const auto& zone : memoryConfig.value("zones", json::array())) {
    if (!zone.contains("file")) continue;  // anonymous: nothing to map for the backend to see
    const std::string file = zone["file"].get<std::string>();
    const uint64_t size = zone.value("size", uint64_t{0});
    const bool shared = zone.value("shared", false);
    UniqueFd fd(::open(file.c_str(), (shared ? O_RDWR : O_RDONLY) | O_CLOEXEC));
    if (!fd) return systemError("Failed to create shared file " + file);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) < size) {
      return makeError(ErrorCode::kInvalidArgument,
                       "memory zone file " + file + " is shorter than the zone (" +
                           std::to_string(st.st_size) + " < " + std::to_string(size) + ")");
    }
    void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                        (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_NORESERVE, fd.get(), 0);
    if (addr == MAP_FAILED) return systemError("mmap " + file);
    mappings_.push_back({addr, size});
  }
  return okResult();
}

void StandinRam::touch(bool boot) {
  const long page = ::sysconf(_SC_PAGESIZE);
  for (const auto& m : mappings_) {
    auto* bytes = static_cast<volatile char*>(m.addr);
    const uint64_t end = std::min<uint64_t>(m.size, kTouchedBytes);
    for (uint64_t off = sizeof(kBootMarker); off < end; off += static_cast<uint64_t>(page)) {
      bytes[off] = static_cast<char>(bytes[off] + 1);
    }
    if (boot) std::memcpy(m.addr, kBootMarker, sizeof(kBootMarker));
  }
}

uint64_t StandinRam::bytesToDump(const json& memoryConfig) {
  uint64_t bytes = memoryConfig.value("size", uint64_t{0});
  for (const auto& zone : memoryConfig.value("zones", json::array())) {
    bool persisted = zone.contains("file") && zone.value("shared", false);
    if (!persisted) bytes += zone.value("size", uint64_t{0});
  }
  return bytes;
}

}  // namespace s2z::tests::ch
