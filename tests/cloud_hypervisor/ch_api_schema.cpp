#include "tests/cloud_hypervisor/ch_api_schema.h"

#include <algorithm>
#include <initializer_list>
#include <vector>

namespace s2z::tests::ch {
namespace {

using nlohmann::json;
using vmm::ch::ChVersion;

enum class T { kString, kInteger, kBoolean, kObject, kArray };

struct Field {
  std::string_view name;
  T type;
  std::string_view ref = "";           // schema of an object, or of array items
  std::vector<std::string_view> enumValues = {};
  ChVersion since{0, 0, 0};            // first version that knows the field
};

struct Schema {
  std::string_view name;
  std::vector<Field> fields;
  std::vector<std::string_view> required;
};

const std::vector<std::string_view> kConsoleModes = {"Off", "Pty", "Tty", "File", "Socket", "Null"};

const std::vector<Schema>& schemas() {
  static const std::vector<Schema> all = {
      {"VmConfig",
       {{"cpus", T::kObject, "CpusConfig"}, {"memory", T::kObject, "MemoryConfig"},
        {"payload", T::kObject, "PayloadConfig"}, {"rate_limit_groups", T::kArray},
        {"disks", T::kArray, "DiskConfig"}, {"net", T::kArray, "NetConfig"},
        {"rng", T::kObject}, {"balloon", T::kObject}, {"fs", T::kArray},
        {"generic_vhost_user", T::kArray}, {"pmem", T::kArray},
        {"serial", T::kObject, "SerialConfig"}, {"console", T::kObject, "ConsoleConfig"},
        {"debug_console", T::kObject}, {"devices", T::kArray}, {"user_devices", T::kArray},
        {"vdpa", T::kArray}, {"vsock", T::kObject, "VsockConfig"}, {"numa", T::kArray},
        {"iommu", T::kBoolean}, {"watchdog", T::kBoolean}, {"rtc", T::kObject},
        {"pvpanic", T::kBoolean}, {"pci_segments", T::kArray}, {"platform", T::kObject},
        {"tpm", T::kObject}, {"landlock_enable", T::kBoolean}, {"landlock_rules", T::kArray}},
       {"payload"}},
      {"CpusConfig",
       {{"boot_vcpus", T::kInteger}, {"max_vcpus", T::kInteger}, {"topology", T::kObject},
        {"kvm_hyperv", T::kBoolean}, {"max_phys_bits", T::kInteger}, {"nested", T::kBoolean},
        {"affinity", T::kArray}, {"features", T::kObject}, {"core_scheduling", T::kString}},
       {"boot_vcpus", "max_vcpus"}},
      {"MemoryConfig",
       {{"size", T::kInteger}, {"hotplug_size", T::kInteger}, {"hotplugged_size", T::kInteger},
        {"mergeable", T::kBoolean}, {"hotplug_method", T::kString}, {"shared", T::kBoolean},
        {"hugepages", T::kBoolean}, {"hugepage_size", T::kInteger}, {"prefault", T::kBoolean},
        {"reserve", T::kBoolean}, {"thp", T::kBoolean},
        {"zones", T::kArray, "MemoryZoneConfig"}},
       {"size"}},
      {"MemoryZoneConfig",
       {{"id", T::kString}, {"size", T::kInteger}, {"file", T::kString},
        {"mergeable", T::kBoolean}, {"shared", T::kBoolean}, {"hugepages", T::kBoolean},
        {"hugepage_size", T::kInteger}, {"host_numa_node", T::kInteger},
        {"hotplug_size", T::kInteger}, {"hotplugged_size", T::kInteger},
        {"prefault", T::kBoolean}, {"reserve", T::kBoolean}},
       {"id", "size"}},
      {"VsockConfig",
       {{"cid", T::kInteger}, {"socket", T::kString}, {"iommu", T::kBoolean},
        {"pci_segment", T::kInteger}, {"pci_device_id", T::kInteger}, {"id", T::kString}},
       {"cid", "socket"}},
      {"PayloadConfig",
       {{"firmware", T::kString}, {"kernel", T::kString}, {"cmdline", T::kString},
        {"initramfs", T::kString}, {"igvm", T::kString}, {"host_data", T::kString}},
       {}},
      {"DiskConfig",
       {{"path", T::kString}, {"readonly", T::kBoolean}, {"direct", T::kBoolean},
        {"iommu", T::kBoolean}, {"num_queues", T::kInteger}, {"queue_size", T::kInteger},
        {"vhost_user", T::kBoolean}, {"vhost_socket", T::kString},
        {"rate_limiter_config", T::kObject}, {"pci_segment", T::kInteger},
        {"pci_device_id", T::kInteger}, {"id", T::kString}, {"serial", T::kString},
        {"rate_limit_group", T::kString}, {"queue_affinity", T::kArray},
        {"backing_files", T::kBoolean}, {"sparse", T::kBoolean}, {"image_type", T::kString},
        {"lock_granularity", T::kString}},
       {}},
      // No "fds": the API takes fds only as SCM_RIGHTS (JSON fds are ignored since v32).
      {"NetConfig",
       {{"tap", T::kString}, {"ip", T::kString}, {"mask", T::kString}, {"mac", T::kString},
        {"host_mac", T::kString}, {"mtu", T::kInteger}, {"iommu", T::kBoolean},
        {"num_queues", T::kInteger}, {"queue_size", T::kInteger}, {"vhost_user", T::kBoolean},
        {"vhost_socket", T::kString}, {"vhost_mode", T::kString}, {"id", T::kString},
        {"pci_segment", T::kInteger}, {"pci_device_id", T::kInteger},
        {"rate_limiter_config", T::kObject}, {"offload_tso", T::kBoolean},
        {"offload_ufo", T::kBoolean}, {"offload_csum", T::kBoolean}},
       {}},
      {"SerialConfig",
       {{"file", T::kString}, {"socket", T::kString}, {"mode", T::kString, "", kConsoleModes}},
       {"mode"}},
      {"ConsoleConfig",
       {{"file", T::kString}, {"socket", T::kString}, {"mode", T::kString, "", kConsoleModes},
        {"iommu", T::kBoolean}, {"id", T::kString}, {"pci_segment", T::kInteger},
        {"pci_device_id", T::kInteger}},
       {"mode"}},
      {"VmSnapshotConfig", {{"destination_url", T::kString}}, {"destination_url"}},
      {"RestoreConfig",
       {{"source_url", T::kString}, {"prefault", T::kBoolean},
        {"memory_restore_mode", T::kString, "", {"Copy", "OnDemand"}, {52, 0, 0}},
        {"resume", T::kBoolean, "", {}, {52, 0, 0}}, {"zone_updates", T::kArray},
        {"net_fds", T::kArray, "RestoredNetConfig", {}, {40, 0, 0}}},
       {"source_url"}},
      // Rust-only (not in the OpenAPI file); "fds" is accepted but ignored by the VMM.
      {"RestoredNetConfig",
       {{"id", T::kString}, {"num_fds", T::kInteger}, {"fds", T::kArray}}, {"id", "num_fds"}},
  };
  return all;
}

const Schema* findSchema(std::string_view name) {
  for (const auto& s : schemas()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool hasType(const json& v, T type) {
  switch (type) {
    case T::kString: return v.is_string();
    case T::kInteger: return v.is_number_integer();
    case T::kBoolean: return v.is_boolean();
    case T::kObject: return v.is_object();
    case T::kArray: return v.is_array();
  }
  return false;
}

Error bad(const std::string& path, const std::string& what) {
  return makeError(ErrorCode::kInvalidArgument, path + ": " + what);
}

Result<void> validate(const Schema& schema, const json& body, const std::string& path,
                      const ChVersion& version) {
  if (!body.is_object()) return bad(path, "expected an object (" + std::string(schema.name) + ")");
  for (auto req : schema.required) {
    if (!body.contains(std::string(req))) {
      return bad(path, "required field \"" + std::string(req) + "\" missing");
    }
  }
  for (const auto& [key, value] : body.items()) {
    auto it = std::find_if(schema.fields.begin(), schema.fields.end(),
                           [&](const Field& f) { return f.name == key; });
    std::string fieldPath = path + "." + key;
    if (it == schema.fields.end() || version < it->since) {
      return bad(fieldPath, "unknown field for " + std::string(schema.name) + " in " +
                                version.str());
    }
    if (!hasType(value, it->type)) return bad(fieldPath, "wrong type");
    if (!it->enumValues.empty() &&
        std::find(it->enumValues.begin(), it->enumValues.end(), value.get<std::string>()) ==
            it->enumValues.end()) {
      return bad(fieldPath, "unknown variant " + value.dump());
    }
    if (it->ref.empty()) continue;
    const Schema* sub = findSchema(it->ref);
    if (it->type == T::kObject) {
      auto r = validate(*sub, value, fieldPath, version);
      if (!r.ok()) return r.error();
    } else {
      for (size_t i = 0; i < value.size(); ++i) {
        auto r = validate(*sub, value[i], fieldPath + "[" + std::to_string(i) + "]", version);
        if (!r.ok()) return r.error();
      }
    }
  }
  return okResult();
}

const std::vector<EndpointSpec> kEndpoints = {
    {"vmm.ping", "GET", ""},          {"vmm.shutdown", "PUT", ""},
    {"vm.info", "GET", ""},           {"vm.counters", "GET", ""},
    {"vm.create", "PUT", "VmConfig"}, {"vm.boot", "PUT", ""},
    {"vm.pause", "PUT", ""},          {"vm.resume", "PUT", ""},
    {"vm.shutdown", "PUT", ""},       {"vm.snapshot", "PUT", "VmSnapshotConfig"},
    {"vm.power-button", "PUT", ""},
    {"vm.restore", "PUT", "RestoreConfig"}, {"vm.add-net", "PUT", "NetConfig"},
};

}  // namespace

const EndpointSpec* findEndpoint(std::string_view endpoint) {
  for (const auto& e : kEndpoints) {
    if (e.endpoint == endpoint) return &e;
  }
  return nullptr;
}

Result<void> validateBody(std::string_view schema, const json& body, const ChVersion& version) {
  const Schema* s = findSchema(schema);
  if (!s) return makeError(ErrorCode::kInternal, "no schema " + std::string(schema));
  auto r = validate(*s, body, std::string(schema), version);
  if (!r.ok()) return r.error();
  return okResult();
}

}  // namespace s2z::tests::ch
