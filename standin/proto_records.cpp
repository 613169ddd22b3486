#include "standin/proto_records.h"

#include <charconv>

namespace s2z::standin {

namespace {

int64_t toNanos(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000000LL + ts.nanos();
}

// Go's %v for float64 is strconv 'g' with the shortest precision.
std::string goFloat(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  return std::string(buf, res.ptr);
}

}  // namespace

std::string renderAttribute(const hashicorp::nomad::plugins::shared::structs::Attribute& a) {
  using A = hashicorp::nomad::plugins::shared::structs::Attribute;
  std::string v;
  switch (a.value_case()) {
    case A::kFloatVal: v = goFloat(a.float_val()); break;
    case A::kIntVal: v = std::to_string(a.int_val()); break;
    case A::kStringVal: v = a.string_val(); break;
    case A::kBoolVal: v = a.bool_val() ? "true" : "false"; break;
    case A::VALUE_NOT_SET: break;
  }
  return v + a.unit();
}

FingerprintRecord toRecord(const drivers::FingerprintResponse& r) {
  FingerprintRecord out;
  out.health = static_cast<FingerprintRecord::Health>(r.health());
  out.description = r.health_description();
  out.err = r.err();
  for (const auto& [k, v] : r.attributes()) out.attributes[k] = renderAttribute(v);
  out.receivedAt = std::chrono::steady_clock::now();
  return out;
}

TaskEventRecord toRecord(const drivers::DriverTaskEvent& e) {
  TaskEventRecord out;
  out.taskId = e.task_id();
  out.allocId = e.alloc_id();
  out.taskName = e.task_name();
  out.message = e.message();
  out.annotations.insert(e.annotations().begin(), e.annotations().end());
  out.hasTimestamp = e.has_timestamp();
  if (e.has_timestamp()) out.timestampUnixNanos = toNanos(e.timestamp());
  out.receivedAt = std::chrono::steady_clock::now();
  return out;
}

StatsSample toRecord(const drivers::TaskStatsResponse& r, const std::string& taskId) {
  StatsSample s;
  s.taskId = taskId;
  const auto& st = r.stats();
  s.hasTimestamp = r.has_stats() && st.has_timestamp();
  if (s.hasTimestamp) s.timestampUnixNanos = toNanos(st.timestamp());
  s.hasAggUsage = r.has_stats() && st.has_agg_resource_usage();
  const auto& cpu = st.agg_resource_usage().cpu();
  const auto& mem = st.agg_resource_usage().memory();
  s.cpuPercent = cpu.percent();
  s.cpuTotalTicks = cpu.total_ticks();
  s.cpuUserMode = cpu.user_mode();
  s.cpuSystemMode = cpu.system_mode();
  s.cpuThrottledPeriods = cpu.throttled_periods();
  s.cpuThrottledTime = cpu.throttled_time();
  s.memoryRss = mem.rss();
  s.memoryUsage = mem.usage();
  for (int f : cpu.measured_fields()) {
    s.cpuMeasured.push_back(drivers::CPUUsage::Fields_Name(static_cast<drivers::CPUUsage::Fields>(f)));
  }
  for (int f : mem.measured_fields()) {
    s.memoryMeasured.push_back(
        drivers::MemoryUsage::Fields_Name(static_cast<drivers::MemoryUsage::Fields>(f)));
  }
  s.receivedAt = std::chrono::steady_clock::now();
  return s;
}

ExitResult toRecord(const drivers::WaitTaskResponse& r) {
  ExitResult out;
  out.hasResult = r.has_result();
  out.exitCode = r.result().exit_code();
  out.signal = r.result().signal();
  out.oomKilled = r.result().oom_killed();
  out.err = r.err();
  return out;
}

Capabilities toRecord(const drivers::DriverCapabilities& c) {
  Capabilities out;
  out.sendSignals = c.send_signals();
  out.exec = c.exec();
  out.fsIsolation = drivers::DriverCapabilities::FSIsolation_Name(c.fs_isolation());
  for (int m : c.network_isolation_modes()) {
    out.networkIsolationModes.push_back(drivers::NetworkIsolationSpec::NetworkIsolationMode_Name(
        static_cast<drivers::NetworkIsolationSpec::NetworkIsolationMode>(m)));
  }
  out.mustCreateNetwork = c.must_create_network();
  out.mountConfigs = c.mount_configs() == drivers::DriverCapabilities::NO_MOUNTS ? "NO_MOUNTS"
                                                                              : "ANY_MOUNTS";
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  out.remoteTasks = c.remote_tasks();
#pragma GCC diagnostic pop
  out.disableLogCollection = c.disable_log_collection();
  out.dynamicWorkloadUsers = c.dynamic_workload_users();
  return out;
}

PluginInfoSummary toRecord(const base::PluginInfoResponse& r) {
  PluginInfoSummary out;
  out.type = base::PluginType_Name(r.type());
  out.apiVersions.assign(r.plugin_api_versions().begin(), r.plugin_api_versions().end());
  out.version = r.plugin_version();
  out.name = r.name();
  return out;
}

}  // namespace s2z::standin
