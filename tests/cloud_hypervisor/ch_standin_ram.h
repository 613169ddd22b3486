// The stand-in's guest memory, as Cloud Hypervisor's memory manager lays it
// out (vmm/src/memory_manager.rs): a memory zone with a file is that file,
// opened (never created) and mapped MAP_SHARED; RAM without one is anonymous.
// A "running guest" dirties its first pages, so the backend's write-back and
// page-out act on a real mapping of a real process; and vm.snapshot dumps
// only what is not persisted in a named shared file (memory-ranges).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace s2z::tests::ch {

class StandinRam {
 public:
  StandinRam() = default;
  ~StandinRam();
  StandinRam(const StandinRam&) = delete;
  StandinRam& operator=(const StandinRam&) = delete;

  // Maps the RAM of a VmConfig's "memory". A zone file that is missing or
  // shorter than its zone fails as the VMM would (it opens without create;
  // a short file would kill it with SIGBUS at the guest's first touch).
  Result<void> map(const nlohmann::json& memoryConfig);

  // The guest runs: it writes one byte in each of its first kTouchedBytes of
  // every zone file (a boot also leaves kBootMarker at offset 0).
  void touch(bool boot);

  // Bytes vm.snapshot must dump into memory-ranges for this memory config:
  // all of it except zones backed by a named file mapped shared.
  static uint64_t bytesToDump(const nlohmann::json& memoryConfig);

  static constexpr uint64_t kTouchedBytes = 4 << 20;
  static constexpr char kBootMarker[] = "fake cloud-hypervisor guest RAM";

 private:
  struct Mapping {
    void* addr = nullptr;
    uint64_t size = 0;
  };
  std::vector<Mapping> mappings_;
};

}  // namespace s2z::tests::ch
