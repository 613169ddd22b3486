// Pinning of the shared maps, with upgrade handling: both skeletons call
// this between open and load, so they (and a restarted plugin) share one
// copy of every map.
#pragma once

#include <filesystem>

#include "bpf/s2z_types.h"
#include "common/result.h"

struct bpf_object;

namespace s2z::bpf {

// The versioned directory under a caller's pin root that holds this build's
// maps and links (<pinRoot>/v1/): a layout change bumps S2Z_PIN_LAYOUT.
inline std::filesystem::path layoutDir(const std::filesystem::path& pinRoot) {
  return pinRoot / S2Z_PIN_LAYOUT;
}

// Points every map of `obj` (opened, not yet loaded) at `dir`/<map name>:
// load then reuses a pinned map of the same layout, or creates the map and
// pins it. A pinned map whose layout (type, key/value size, max entries,
// flags) differs, e.g. left by an older plugin, is unpinned with a warning
// so a fresh one is created; its contents are lost and the caller must
// re-register its instances. Returns how many maps were replaced that way.
// Precondition: `dir` exists on a bpffs. Fails naming the map's pin path.
Result<unsigned> pinMapsUnder(bpf_object* obj, const std::filesystem::path& dir);

}  // namespace s2z::bpf
