#include "vmm/kata/kata_config.h"

#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

namespace s2z::vmm::kata {
namespace {

Error invalid(const std::string& source, const std::string& what) {
  return makeError(ErrorCode::kInvalidArgument, "kata config " + source + ": " + what);
}

// An optional string key as a path; wrong type is an error.
Result<std::filesystem::path> pathKey(const toml::table& t, const char* key,
                                      const std::string& where) {
  const toml::node* node = t.get(key);
  if (!node) return std::filesystem::path();
  if (!node->is_string()) return invalid(where, std::string(key) + " must be a string");
  return std::filesystem::path(node->as_string()->get());
}

// Kata writes default_vcpus as an integer (Go runtime) or a float (newer
// releases); both are accepted when whole and at least 1.
Result<std::optional<unsigned>> vcpusKey(const toml::table& t, const std::string& where) {
  const toml::node* node = t.get("default_vcpus");
  if (!node) return std::optional<unsigned>();
  double value = 0;
  if (auto i = node->as_integer()) {
    value = static_cast<double>(i->get());
  } else if (auto f = node->as_floating_point()) {
    value = f->get();
  } else {
    return invalid(where, "default_vcpus must be a number");
  }
  if (value < 1 || value > 1024 || std::floor(value) != value) {
    return invalid(where, "default_vcpus must be a whole number from 1 to 1024");
  }
  return std::optional<unsigned>(static_cast<unsigned>(value));
}

Result<std::optional<uint64_t>> memoryKey(const toml::table& t, const std::string& where) {
  const toml::node* node = t.get("default_memory");
  if (!node) return std::optional<uint64_t>();
  auto i = node->as_integer();
  if (!i) return invalid(where, "default_memory must be an integer (MiB)");
  if (i->get() < 64) return invalid(where, "default_memory must be at least 64 MiB");
  return std::optional<uint64_t>(static_cast<uint64_t>(i->get()));
}

Result<void> checkSharedFs(const toml::table& t, const std::string& where) {
  const toml::node* node = t.get("shared_fs");
  if (!node) return okResult();
  if (!node->is_string()) return invalid(where, "shared_fs must be a string");
  const std::string& fs = node->as_string()->get();
  if (fs == "virtio-fs" || fs == "virtio-fs-nydus") {
    return invalid(where, "shared_fs = \"" + fs +
                              "\" is not supported: virtio-fs breaks snapshot restore in "
                              "Cloud Hypervisor (the device cannot be reattached after a "
                              "restore); use block devices with shared_fs = \"none\"");
  }
  if (fs != "none" && fs != "virtio-9p") {
    return invalid(where, "unknown shared_fs \"" + fs + "\"");
  }
  if (fs == "virtio-9p") {
    return invalid(where, "shared_fs = \"virtio-9p\" is not supported: the plugin boots "
                          "from block devices only; use shared_fs = \"none\"");
  }
  return okResult();
}

}  // namespace

Result<KataDefaults> parseKataConfig(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << e.description() << " at line " << e.source().begin.line;
    return invalid(source, msg.str());
  }
  const toml::table* hypervisors = root["hypervisor"].as_table();
  if (!hypervisors) return invalid(source, "no [hypervisor.*] table");

  KataDefaults out;
  const toml::table* table = nullptr;
  std::string tableName;
  for (const auto& [key, node] : *hypervisors) {
    std::string name(key.str());
    if (name != "clh" && name != "qemu") {
      return invalid(source, "[hypervisor." + name +
                                 "] is not supported: use configuration-clh.toml or "
                                 "configuration-qemu.toml");
    }
    if (table) return invalid(source, "more than one [hypervisor.*] table");
    table = node.as_table();
    tableName = name;
    if (!table) return invalid(source, "hypervisor." + name + " must be a table");
  }
  if (!table) return invalid(source, "no [hypervisor.clh] or [hypervisor.qemu] table");
  out.hypervisor = tableName == "clh" ? Hypervisor::kCloudHypervisor : Hypervisor::kQemu;
  std::string where = source + " [hypervisor." + tableName + "]";

  if (auto fs = checkSharedFs(*table, where); !fs.ok()) return fs.error();
  auto path = pathKey(*table, "path", where);
  if (!path.ok()) return path.error();
  auto kernel = pathKey(*table, "kernel", where);
  if (!kernel.ok()) return kernel.error();
  auto image = pathKey(*table, "image", where);
  if (!image.ok()) return image.error();
  auto initrd = pathKey(*table, "initrd", where);
  if (!initrd.ok()) return initrd.error();
  auto vcpus = vcpusKey(*table, where);
  if (!vcpus.ok()) return vcpus.error();
  auto memory = memoryKey(*table, where);
  if (!memory.ok()) return memory.error();

  if (path->empty()) return invalid(where, "path (the hypervisor binary) is required");
  if (kernel->empty()) return invalid(where, "kernel is required");
  if (!image->empty() && !initrd->empty()) {
    return invalid(where, "image and initrd are mutually exclusive (Kata uses one or the other)");
  }
  out.hypervisorPath = *path;
  out.kernel = *kernel;
  out.image = *image;
  out.initrd = *initrd;
  out.vcpus = *vcpus;
  out.memoryMib = *memory;
  return out;
}

Result<KataDefaults> loadKataConfig(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return makeError(ErrorCode::kNotFound, "kata config not found: " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return parseKataConfig(text.str(), path.string());
}

}  // namespace s2z::vmm::kata
