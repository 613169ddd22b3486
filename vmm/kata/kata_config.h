// Reads the hypervisor section of a Kata Containers configuration file
// (configuration-clh.toml or configuration-qemu.toml), so a user who already
// runs Kata can point the plugin at the same kernel, image and hypervisor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "common/result.h"
#include "vmm/vmm.h"

namespace s2z::vmm::kata {

struct KataDefaults {
  vmm::Hypervisor hypervisor = vmm::Hypervisor::kCloudHypervisor;
  std::filesystem::path hypervisorPath;  // "path"
  std::filesystem::path kernel;          // "kernel"
  std::filesystem::path image;           // "image" (a rootfs disk image); empty: none
  std::filesystem::path initrd;          // "initrd"; empty: none
  std::optional<uint64_t> memoryMib;     // "default_memory"
  std::optional<unsigned> vcpus;         // "default_vcpus"
};

// Parses the [hypervisor.clh] or [hypervisor.qemu] table of the file at path.
// Fails with kNotFound when the file is missing; kInvalidArgument when the
// TOML is malformed, no (or more than one) supported hypervisor table is
// present, a key has the wrong type or range, or shared_fs is "virtio-fs" /
// "virtio-fs-nydus": virtio-fs breaks snapshot restore in Cloud Hypervisor,
// so the plugin only works with block devices (shared_fs = "none").
Result<KataDefaults> loadKataConfig(const std::filesystem::path& path);

// Same, from TOML text (source names it in messages). For tests and callers
// that already hold the text.
Result<KataDefaults> parseKataConfig(std::string_view toml, const std::string& source);

}  // namespace s2z::vmm::kata
