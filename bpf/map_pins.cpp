#include "bpf/map_pins.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"

namespace s2z::bpf {
namespace {

namespace fs = std::filesystem;

enum class PinStatus { kAbsent, kCompatible, kReplaced };

// Compares the pinned map at `path` with the definition of `map`; unpins
// it when they differ (libbpf would refuse to reuse it and fail the load).
Result<PinStatus> checkPinned(const bpf_map* map, const fs::path& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) {
    if (errno == ENOENT) return PinStatus::kAbsent;
    return systemError("open pinned map " + path.string());
  }
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  bool same = bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 &&
              info.type == static_cast<uint32_t>(bpf_map__type(map)) &&
              info.key_size == bpf_map__key_size(map) &&
              info.value_size == bpf_map__value_size(map) &&
              info.max_entries == bpf_map__max_entries(map) &&
              info.map_flags == bpf_map__map_flags(map);
  if (same) return PinStatus::kCompatible;
  spdlog::warn(
      "bpf: pinned map {} has another layout (type {} key {} value {} entries {} flags {:#x}; "
      "want type {} key {} value {} entries {} flags {:#x}): replacing it, its entries are lost",
      path.string(), info.type, info.key_size, info.value_size, info.max_entries, info.map_flags,
      static_cast<int>(bpf_map__type(map)), bpf_map__key_size(map), bpf_map__value_size(map),
      bpf_map__max_entries(map), bpf_map__map_flags(map));
  if (::unlink(path.c_str()) != 0) return systemError("unpin stale map " + path.string());
  return PinStatus::kReplaced;
}

}  // namespace

Result<unsigned> pinMapsUnder(bpf_object* obj, const fs::path& dir) {
  unsigned replaced = 0;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    // .rodata/.bss of one program are private to it, never shared.
    if (bpf_map__is_internal(map)) continue;
    const fs::path path = dir / bpf_map__name(map);
    auto status = checkPinned(map, path);
    if (!status.ok()) return status.error();
    if (*status == PinStatus::kReplaced) ++replaced;
    if (int err = bpf_map__set_pin_path(map, path.c_str()); err != 0)
      return systemError("set pin path " + path.string(), -err);
  }
  return replaced;
}

}  // namespace s2z::bpf
