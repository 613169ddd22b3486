// What a light sleep does with the guest RAM (task and plugin
// `light_sleep_cache`), and its names in the config and the instance record.
// Header-only: the config decoders and their fuzz targets use it without the
// VMM backends.
#pragma once

#include <optional>
#include <string_view>

namespace s2z::vmm {

// What a light sleep does with the guest RAM, once written back to its file.
enum class LightSleepCache {
  // Paged out of the VMM and left in the host's page cache, clean: the
  // kernel reclaims it first under pressure, and a wake maps it back with
  // minor faults.
  kKeep,
  // Paged out and dropped from the page cache as well: the task holds only
  // its paused VMM, and a wake reads the guest's working set back from disk.
  kDrop,
  // Left mapped in the VMM, clean (reclaim can still take it without I/O):
  // a wake finds the guest's pages where it left them (the fastest wake),
  // but the VMM's RSS still counts them.
  kMapped,
};

// "keep" / "drop" / "mapped".
inline const char* lightSleepCacheName(LightSleepCache c) {
  switch (c) {
    case LightSleepCache::kKeep: return "keep";
    case LightSleepCache::kDrop: return "drop";
    case LightSleepCache::kMapped: return "mapped";
  }
  return "unknown";
}

// The value a name stands for; nullopt for anything else.
inline std::optional<LightSleepCache> parseLightSleepCache(std::string_view name) {
  for (auto c : {LightSleepCache::kKeep, LightSleepCache::kDrop, LightSleepCache::kMapped}) {
    if (name == lightSleepCacheName(c)) return c;
  }
  return std::nullopt;
}

}  // namespace s2z::vmm
