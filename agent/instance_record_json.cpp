#include "agent/instance_record_json.h"

#include <cstdint>
#include <set>
#include <string>

namespace s2z::agent {
namespace {

using nlohmann::json;

// Persisted names; never change them (old handles must still decode).
const char* hypervisorKey(vmm::Hypervisor h) {
  return h == vmm::Hypervisor::kCloudHypervisor ? "cloud-hypervisor" : "qemu";
}
const char* acceleratorKey(vmm::Accelerator a) {
  return a == vmm::Accelerator::kKvm ? "kvm" : "tcg";
}

json volumesJson(const std::vector<VolumeSpec>& volumes) {
  json out = json::array();
  for (const auto& v : volumes) {
    out.push_back({{"hostPath", v.hostPath.string()}, {"taskPath", v.taskPath}, {"readonly", v.readonly}});
  }
  return out;
}

json workloadJson(const std::optional<WorkloadSpec>& w) {
  if (!w) return nullptr;
  return json{
      {"argv", w->argv},
      {"env", w->env},
      {"workingDir", w->workingDir},
      {"user", w->user},
      {"hostname", w->hostname},
      {"dnsServers", w->dnsServers},
      {"dnsSearches", w->dnsSearches},
      {"dnsOptions", w->dnsOptions},
      {"localDir", w->localDir.string()},
      {"secretsDir", w->secretsDir.string()},
      {"allocDir", w->allocDir.string()},
      {"wakeToStop", w->wakeToStop},
      {"scriptChecksWake", w->scriptChecksWake},
      {"volumes", volumesJson(w->volumes)},
      {"readonlyRoot", w->readonlyRoot},
      {"stopSignal", w->stopSignal},
  };
}

json groupJson(const GroupNetworkSpec& g) {
  json ports = json::array();
  for (const auto& p : g.hostPorts) ports.push_back({{"hostIp", p.hostIp}, {"port", p.port}});
  return json{{"netnsPath", g.netnsPath.string()}, {"hostPorts", ports}, {"eth0TxQueueLen", g.eth0TxQueueLen}};
}

json specJson(const InstanceSpec& s) {
  return json{
      {"taskId", s.taskId},
      {"name", s.name},
      {"hypervisor", hypervisorKey(s.hypervisor)},
      {"binary", s.binary.string()},
      {"accelerator", acceleratorKey(s.accelerator)},
      {"kernel", s.kernel.string()},
      {"initrd", s.initrd.string()},
      {"rootfs", s.rootfs.string()},
      {"cmdline", s.cmdline},
      {"vcpus", s.vcpus},
      {"memoryMib", s.memoryMib},
      {"stdoutPath", s.stdoutPath.string()},
      {"stderrPath", s.stderrPath.string()},
      {"scaleToZero", s.scaleToZero},
      {"idleTimeoutMs", static_cast<int64_t>(s.idleTimeout.count())},
      {"sleepTier", static_cast<int>(s.sleepTier)},
      {"deepSleepAfterMs", static_cast<int64_t>(s.deepSleepAfter.count())},
      {"lightSleepCache", vmm::lightSleepCacheName(s.lightSleepCache)},
      {"cgroup", s.cgroup.string()},
      {"cgroupScope", s.cgroupScope},
      {"group", groupJson(s.group)},
      {"workload", workloadJson(s.workload)},
      {"scratchMib", s.scratchMib},
  };
}

json networkJson(const InstanceNetwork& n) {
  return json{
      {"tapName", n.tapName}, {"ifindex", n.ifindex}, {"address", n.address},
      {"gateway", n.gateway}, {"prefixLength", n.prefixLength}, {"mac", n.mac},
  };
}

// Reads the fields of one JSON object, remembering which were consumed so
// that finish() can reject unknown ones. The first problem sticks.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
    if (!object_.is_object()) fail(path_.empty() ? "record" : path_, "not an object");
  }

  void string(const char* key, std::string& out) {
    if (const json* v = field(key, json::value_t::string)) out = v->get<std::string>();
  }
  void path(const char* key, std::filesystem::path& out) {
    std::string s;
    string(key, s);
    out = s;
  }
  void boolean(const char* key, bool& out) {
    if (const json* v = field(key, json::value_t::boolean)) out = v->get<bool>();
  }
  // Any integer JSON number within [min, max].
  void integer(const char* key, int64_t min, int64_t max, int64_t& out) {
    const json* v = field(key, json::value_t::number_integer);
    if (!v) return;
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      fail(name(key), "out of range");
      return;
    }
    int64_t x = v->get<int64_t>();
    if (x < min || x > max) {
      fail(name(key), "out of range");
      return;
    }
    out = x;
  }
  void strings(const char* key, std::vector<std::string>& out) {
    const json* v = field(key, json::value_t::array);
    if (!v) return;
    out.clear();
    for (const auto& item : *v) {
      if (!item.is_string()) {
        fail(name(key), "expected strings only");
        return;
      }
      out.push_back(item.get<std::string>());
    }
  }
  void unsigned64(const char* key, uint64_t& out) {
    const json* v = field(key, json::value_t::number_unsigned);
    if (v) out = v->get<uint64_t>();
  }
  // A nested object, read by fn(ObjectReader&).
  template <typename Fn>
  void object(const char* key, Fn fn) {
    const json* v = field(key, json::value_t::object);
    if (!v) return;
    ObjectReader inner(*v, name(key));
    fn(inner);
    inner.finish();
    if (!inner.error_.empty() && error_.empty()) error_ = inner.error_;
  }

  // An array of objects, each read by fn(ObjectReader&).
  template <typename Fn>
  void objects(const char* key, Fn fn) {
    const json* v = field(key, json::value_t::array);
    if (!v) return;
    for (size_t i = 0; i < v->size(); ++i) {
      std::string item = name(key) + "[" + std::to_string(i) + "]";
      if (!(*v)[i].is_object()) {
        fail(item, "not an object");
        return;
      }
      ObjectReader inner((*v)[i], item);
      fn(inner);
      inner.finish();
      if (!inner.error_.empty() && error_.empty()) error_ = inner.error_;
    }
  }

  // Like object(), but null stands for "none": returns whether it was there.
  template <typename Fn>
  bool optionalObject(const char* key, Fn fn) {
    if (object_.is_object()) {
      auto it = object_.find(key);
      if (it != object_.end() && it->is_null()) {
        seen_.insert(key);
        return false;
      }
    }
    object(key, fn);
    return true;
  }

  void fail(const std::string& field, const std::string& why) {
    if (error_.empty()) error_ = field + ": " + why;
  }
  std::string name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  // Rejects keys nobody asked for.
  void finish() {
    if (!object_.is_object()) return;
    for (const auto& [key, value] : object_.items()) {
      if (!seen_.count(key)) fail(name(key.c_str()), "unknown field");
    }
  }
  const std::string& error() const { return error_; }

 private:
  // nlohmann reports non-negative integers as number_unsigned; both integer
  // kinds are accepted for either request (range is checked by the caller).
  const json* field(const char* key, json::value_t type) {
    seen_.insert(key);
    if (!object_.is_object()) return nullptr;
    auto it = object_.find(key);
    if (it == object_.end()) {
      fail(name(key), "missing");
      return nullptr;
    }
    bool ok = it->type() == type;
    if (type == json::value_t::number_integer) ok = it->is_number_integer();
    if (type == json::value_t::number_unsigned) ok = it->is_number_unsigned();
    if (!ok) {
      fail(name(key), std::string("expected ") + typeName(type) + ", got " + it->type_name());
      return nullptr;
    }
    return &*it;
  }
  static const char* typeName(json::value_t t) {
    switch (t) {
      case json::value_t::string: return "string";
      case json::value_t::boolean: return "boolean";
      case json::value_t::number_integer: return "integer";
      case json::value_t::number_unsigned: return "non-negative integer";
      case json::value_t::object: return "object";
      case json::value_t::array: return "array";
      default: return "value";
    }
  }

  const json& object_;
  std::string path_;
  std::set<std::string> seen_;
  std::string error_;
};

json identityJson(const vmm::ProcessIdentity& p) {
  return json{{"pid", static_cast<int64_t>(p.pid)}, {"startTime", p.startTime}};
}

void readIdentity(ObjectReader& r, vmm::ProcessIdentity& p) {
  int64_t pid = 0;
  r.integer("pid", 0, INT32_MAX, pid);
  r.unsigned64("startTime", p.startTime);
  p.pid = static_cast<pid_t>(pid);
}

void readVolumes(ObjectReader& r, std::vector<VolumeSpec>& volumes) {
  volumes.clear();
  r.objects("volumes", [&](ObjectReader& o) {
    VolumeSpec v;
    o.path("hostPath", v.hostPath);
    o.string("taskPath", v.taskPath);
    o.boolean("readonly", v.readonly);
    volumes.push_back(std::move(v));
  });
}

void readWorkload(ObjectReader& r, WorkloadSpec& w, int64_t version) {
  r.strings("argv", w.argv);
  r.strings("env", w.env);
  r.string("workingDir", w.workingDir);
  r.string("user", w.user);
  r.string("hostname", w.hostname);
  r.strings("dnsServers", w.dnsServers);
  r.strings("dnsSearches", w.dnsSearches);
  r.strings("dnsOptions", w.dnsOptions);
  r.path("localDir", w.localDir);
  r.path("secretsDir", w.secretsDir);
  r.path("allocDir", w.allocDir);
  r.boolean("wakeToStop", w.wakeToStop);
  r.boolean("scriptChecksWake", w.scriptChecksWake);
  readVolumes(r, w.volumes);
  if (version >= 4) {  // images: readonly_rootfs and StopSignal
    r.boolean("readonlyRoot", w.readonlyRoot);
    int64_t stopSignal = 0;
    r.integer("stopSignal", 0, 64, stopSignal);
    w.stopSignal = static_cast<int>(stopSignal);
  }
}

json workloadExitJson(const WorkloadExit& e) {
  return json{{"reported", e.reported}, {"exitCode", e.exitCode}, {"signal", e.signal},
              {"oomKilled", e.oomKilled}};
}

void readWorkloadExit(ObjectReader& r, WorkloadExit& e) {
  int64_t code = 0, signal = 0;
  r.boolean("reported", e.reported);
  r.integer("exitCode", INT32_MIN, INT32_MAX, code);
  r.integer("signal", 0, 128, signal);
  r.boolean("oomKilled", e.oomKilled);
  e.exitCode = static_cast<int>(code);
  e.signal = static_cast<int>(signal);
}

void readSpec(ObjectReader& r, InstanceSpec& s, int64_t version) {
  std::string hypervisor, accelerator;
  int64_t vcpus = 0, memoryMib = 0, idleMs = 0;
  r.string("taskId", s.taskId);
  r.string("name", s.name);
  r.string("hypervisor", hypervisor);
  r.path("binary", s.binary);
  r.string("accelerator", accelerator);
  r.path("kernel", s.kernel);
  r.path("initrd", s.initrd);
  r.path("rootfs", s.rootfs);
  r.string("cmdline", s.cmdline);
  r.integer("vcpus", 1, 1024, vcpus);
  r.integer("memoryMib", 1, int64_t{1} << 30, memoryMib);
  if (version == 1) {
    r.path("consolePath", s.stdoutPath);
  } else {
    r.path("stdoutPath", s.stdoutPath);
    r.path("stderrPath", s.stderrPath);
  }
  r.boolean("scaleToZero", s.scaleToZero);
  r.integer("idleTimeoutMs", 0, INT64_MAX, idleMs);
  if (version >= 3) {
    WorkloadSpec w;
    if (r.optionalObject("workload", [&](ObjectReader& o) { readWorkload(o, w, version); })) s.workload = w;
    r.unsigned64("scratchMib", s.scratchMib);
  }
  int64_t tier = static_cast<int>(SleepTier::kDeep), deepAfterMs = 0;
  if (version >= 5) {  // sleep tiers; before, every sleep was deep
    r.integer("sleepTier", static_cast<int>(SleepTier::kLight), static_cast<int>(SleepTier::kDeep), tier);
    r.integer("deepSleepAfterMs", 0, INT64_MAX, deepAfterMs);
    r.path("cgroup", s.cgroup);
    if (version >= 8) r.string("cgroupScope", s.cgroupScope);
    r.object("group", [&](ObjectReader& g) {
      g.path("netnsPath", s.group.netnsPath);
      g.integer("eth0TxQueueLen", -1, UINT32_MAX, s.group.eth0TxQueueLen);
      g.objects("hostPorts", [&](ObjectReader& p) {
        GroupHostPort port;
        int64_t number = 0;
        p.string("hostIp", port.hostIp);
        p.integer("port", 0, 65535, number);
        port.port = static_cast<uint16_t>(number);
        s.group.hostPorts.push_back(port);
      });
    });
  }
  s.sleepTier = static_cast<SleepTier>(tier);
  s.deepSleepAfter = std::chrono::milliseconds(deepAfterMs);
  std::string lightCache = "keep";  // before version 7, every light sleep kept it
  if (version >= 7) r.string("lightSleepCache", lightCache);
  if (!r.error().empty()) return;
  if (auto cache = vmm::parseLightSleepCache(lightCache)) {
    s.lightSleepCache = *cache;
  } else {
    r.fail(r.name("lightSleepCache"), "unknown value \"" + lightCache + "\"");
  }
  if (hypervisor == "qemu") s.hypervisor = vmm::Hypervisor::kQemu;
  else if (hypervisor == "cloud-hypervisor") s.hypervisor = vmm::Hypervisor::kCloudHypervisor;
  else r.fail(r.name("hypervisor"), "unknown value \"" + hypervisor + "\"");
  if (accelerator == "kvm") s.accelerator = vmm::Accelerator::kKvm;
  else if (accelerator == "tcg") s.accelerator = vmm::Accelerator::kTcg;
  else r.fail(r.name("accelerator"), "unknown value \"" + accelerator + "\"");
  s.vcpus = static_cast<unsigned>(vcpus);
  s.memoryMib = static_cast<uint64_t>(memoryMib);
  s.idleTimeout = std::chrono::milliseconds(idleMs);
}

void readNetwork(ObjectReader& r, InstanceNetwork& n) {
  int64_t ifindex = 0, prefix = 0;
  r.string("tapName", n.tapName);
  r.integer("ifindex", 0, UINT32_MAX, ifindex);
  r.string("address", n.address);
  r.string("gateway", n.gateway);
  r.integer("prefixLength", 0, 32, prefix);
  r.string("mac", n.mac);
  n.ifindex = static_cast<uint32_t>(ifindex);
  n.prefixLength = static_cast<int>(prefix);
}

}  // namespace

nlohmann::json toJson(const InstanceRecord& record) {
  return json{
      {"version", kInstanceRecordVersion},
      {"spec", specJson(record.spec)},
      {"network", networkJson(record.network)},
      {"runDir", record.runDir.string()},
      {"state", static_cast<int>(record.state)},
      {"vmm", identityJson(record.vmm)},
      {"standby", record.standby},
      {"sleepingTier", static_cast<int>(record.sleepingTier)},
      {"logHolder", identityJson(record.logHolder)},
      {"snapshotDir", record.snapshotDir.string()},
      {"snapshotGeneration", record.snapshotGeneration},
      {"startedAtUnixNs", record.startedAtUnixNs},
      {"workloadExit", workloadExitJson(record.workloadExit)},
  };
}

Result<InstanceRecord> instanceRecordFromJson(const nlohmann::json& j) {
  InstanceRecord rec;
  ObjectReader r(j, "");
  int64_t version = 0, state = 0;
  r.integer("version", 0, INT64_MAX, version);
  if (r.error().empty() && (version < 1 || version > kInstanceRecordVersion)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "instance record: version " + std::to_string(version) +
                         " is not supported (expected 1 to " + std::to_string(kInstanceRecordVersion) +
                         ")");
  }
  r.object("spec", [&](ObjectReader& s) { readSpec(s, rec.spec, version); });
  r.object("network", [&](ObjectReader& n) { readNetwork(n, rec.network); });
  r.path("runDir", rec.runDir);
  r.integer("state", static_cast<int>(InstanceState::kBooting),
            static_cast<int>(InstanceState::kExited), state);
  r.object("vmm", [&](ObjectReader& v) { readIdentity(v, rec.vmm); });
  r.boolean("standby", rec.standby);
  if (version >= 5) {
    int64_t tier = 0;
    r.integer("sleepingTier", static_cast<int>(SleepTier::kLight), static_cast<int>(SleepTier::kDeep), tier);
    rec.sleepingTier = static_cast<SleepTier>(tier);
  }
  if (version >= 2) r.object("logHolder", [&](ObjectReader& h) { readIdentity(h, rec.logHolder); });
  r.path("snapshotDir", rec.snapshotDir);
  if (version >= 6) {  // snapshot manifests; before, generation 0: unchecked
    int64_t generation = 0;
    r.integer("snapshotGeneration", 0, INT64_MAX, generation);
    rec.snapshotGeneration = static_cast<uint64_t>(generation);
  }
  r.integer("startedAtUnixNs", INT64_MIN, INT64_MAX, rec.startedAtUnixNs);
  if (version >= 3) {
    r.object("workloadExit", [&](ObjectReader& e) { readWorkloadExit(e, rec.workloadExit); });
  }
  r.finish();
  if (!r.error().empty()) {
    return makeError(ErrorCode::kInvalidArgument, "instance record: " + r.error());
  }
  rec.state = static_cast<InstanceState>(state);
  return rec;
}

}  // namespace s2z::agent
