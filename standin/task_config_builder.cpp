#include "standin/task_config_builder.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>

#include "standin/spec_encoder.h"

namespace s2z::standin {

namespace {

std::string randomHex(size_t bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    unsigned b = static_cast<unsigned>(rng() & 0xff);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

Result<void> makeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "mkdir " + path};
  return okResult();
}

Result<void> makeFifo(const std::string& path) {
  if (mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) return systemError("mkfifo " + path);
  return okResult();
}

Result<std::string> interpolate(const std::string& s, const std::map<std::string, std::string>& env) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (s.compare(i, 2, "${") != 0) {
      out.push_back(s[i++]);
      continue;
    }
    size_t end = s.find('}', i + 2);
    if (end == std::string::npos) {
      return makeError(ErrorCode::kInvalidArgument, "Invalid template: unclosed ${ in \"" + s + "\"");
    }
    std::string name = s.substr(i + 2, end - i - 2);
    if (name.rfind("env.", 0) == 0) name = name.substr(4);
    auto it = env.find(name);
    if (it == env.end()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "Unknown variable; There is no variable named \"" + name + "\".");
    }
    out += it->second;
    i = end + 1;
  }
  return out;
}

Result<void> interpolateInPlace(YAML::Node node, const std::map<std::string, std::string>& env) {
  if (node.IsScalar()) {
    if (node.Scalar().find("${") == std::string::npos) return okResult();
    auto replaced = interpolate(node.Scalar(), env);
    if (!replaced.ok()) return replaced.error();
    node = *replaced;
    node.SetTag("!");  // interpolation results are strings
    return okResult();
  }
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) S2Z_TRY(interpolateInPlace(node[i], env), "config");
  } else if (node.IsMap()) {
    for (auto kv : node) S2Z_TRY(interpolateInPlace(kv.second, env), "config");
  }
  return okResult();
}

double detectComputeMhz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  double total = 0;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) total += std::atof(line.c_str() + colon + 1);
    }
  }
  if (total <= 0) total = 1000.0 * static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  return total;
}

}  // namespace

std::string randomUuid() {
  std::string h = randomHex(16);
  h[12] = '4';
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

std::string newTaskId(const std::string& allocId, const std::string& taskName) {
  return allocId + "/" + taskName + "/" + randomHex(4);
}

NodeInfo NodeInfo::detect() {
  NodeInfo n;
  n.nodeId = randomUuid();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  n.nodeName = host;
  n.totalComputeMhz = detectComputeMhz();
  n.cgroups = NomadCgroups::init();
  return n;
}

Result<AllocLayout> prepareAllocDir(const std::string& dataDir, const std::string& allocId,
                                    const std::string& taskName) {
  AllocLayout l;
  l.allocDir = dataDir + "/alloc/" + allocId;
  l.taskDir = l.allocDir + "/" + taskName;
  l.logsDir = l.allocDir + "/alloc/logs";
  for (const auto& dir : {l.logsDir, l.allocDir + "/alloc/data", l.allocDir + "/alloc/tmp",
                          l.taskDir + "/local", l.taskDir + "/secrets", l.taskDir + "/tmp"}) {
    S2Z_TRY(makeDirs(dir), "prepare alloc dir");
  }
  l.stdoutFifo = l.logsDir + "/." + taskName + ".stdout.fifo";
  l.stderrFifo = l.logsDir + "/." + taskName + ".stderr.fifo";
  S2Z_TRY(makeFifo(l.stdoutFifo), "prepare alloc dir");
  S2Z_TRY(makeFifo(l.stderrFifo), "prepare alloc dir");
  return l;
}

Result<YAML::Node> interpolateEnv(const YAML::Node& config,
                                  const std::map<std::string, std::string>& env) {
  YAML::Node copy = YAML::Clone(config);
  S2Z_TRY(interpolateInPlace(copy, env), "task config");
  return copy;
}

std::map<std::string, std::string> taskEnvironment(const TaskFile& task, const std::string& allocId,
                                                   const AllocLayout& layout) {
  std::map<std::string, std::string> env;
  env["NOMAD_ALLOC_ID"] = allocId;
  env["NOMAD_SHORT_ALLOC_ID"] = allocId.substr(0, 8);
  env["NOMAD_ALLOC_NAME"] = task.jobName + "." + task.groupName + "[0]";
  env["NOMAD_ALLOC_INDEX"] = "0";
  env["NOMAD_TASK_NAME"] = task.name;
  env["NOMAD_GROUP_NAME"] = task.groupName;
  env["NOMAD_JOB_NAME"] = task.jobName;
  env["NOMAD_JOB_ID"] = task.jobName;
  env["NOMAD_NAMESPACE"] = task.ns;
  env["NOMAD_REGION"] = "global";
  env["NOMAD_DC"] = "dc1";
  env["NOMAD_CPU_LIMIT"] = std::to_string(task.cpuMhz);
  env["NOMAD_MEMORY_LIMIT"] = std::to_string(task.memoryMb);
  if (task.memoryMaxMb > 0) env["NOMAD_MEMORY_MAX_LIMIT"] = std::to_string(task.memoryMaxMb);
  // FSIsolation NONE/IMAGE drivers see host paths (§3.4).
  env["NOMAD_ALLOC_DIR"] = layout.allocDir + "/alloc";
  env["NOMAD_TASK_DIR"] = layout.taskDir + "/local";
  env["NOMAD_SECRETS_DIR"] = layout.taskDir + "/secrets";
  for (const auto& p : task.ports) {
    std::string ip = p.hostIp.empty() ? "127.0.0.1" : p.hostIp;
    env["NOMAD_PORT_" + p.label] = std::to_string(p.to ? p.to : p.value);
    env["NOMAD_HOST_PORT_" + p.label] = std::to_string(p.value);
    env["NOMAD_IP_" + p.label] = ip;
    env["NOMAD_ADDR_" + p.label] = ip + ":" + std::to_string(p.value);
    env["NOMAD_ALLOC_PORT_" + p.label] = std::to_string(p.to ? p.to : p.value);
  }
  for (const auto& [k, v] : task.env) env[k] = v;
  return env;
}

Result<drivers::TaskConfig> buildTaskConfig(
    const TaskFile& task, const hashicorp::nomad::plugins::shared::hclspec::Spec& spec,
    const std::string& allocId, const AllocLayout& layout, const NodeInfo& node) {
  drivers::TaskConfig cfg;
  cfg.set_id(newTaskId(allocId, task.name));
  cfg.set_name(task.name);
  cfg.set_alloc_id(allocId);
  cfg.set_job_name(task.jobName);
  cfg.set_job_id(task.jobName);
  cfg.set_task_group_name(task.groupName);
  cfg.set_namespace_(task.ns);
  cfg.set_node_name(node.nodeName);
  cfg.set_node_id(node.nodeId);
  cfg.set_user(task.user);
  for (const auto& m : task.mounts) {
    auto* mount = cfg.add_mounts();
    mount->set_task_path(m.taskPath);
    mount->set_host_path(m.hostPath);
    mount->set_readonly(m.readonly);
  }
  cfg.set_alloc_dir(layout.allocDir);
  cfg.set_stdout_path(layout.stdoutFifo);
  cfg.set_stderr_path(layout.stderrFifo);

  auto env = taskEnvironment(task, allocId, layout);
  for (const auto& [k, v] : env) (*cfg.mutable_env())[k] = v;

  auto* res = cfg.mutable_resources();
  res->mutable_allocated_resources()->mutable_cpu()->set_cpu_shares(task.cpuMhz);
  res->mutable_allocated_resources()->mutable_memory()->set_memory_mb(task.memoryMb);
  res->mutable_allocated_resources()->mutable_memory()->set_memory_max_mb(task.memoryMaxMb);
  auto* linux = res->mutable_linux_resources();
  linux->set_cpu_shares(task.cpuMhz);
  linux->set_memory_limit_bytes(int64_t{std::max(task.memoryMb, task.memoryMaxMb)} << 20);
  if (node.totalComputeMhz > 0) linux->set_percentticks(task.cpuMhz / node.totalComputeMhz);
  auto cores = node.cgroups.reserveCores(task.cores);
  if (!cores.ok()) return cores.error();
  linux->set_cpuset_cpus(*cores);
  linux->set_cpuset_cgroup(node.cgroups.cpusetCgroup(allocId, task.name, *cores));
  for (const auto& p : task.ports) {
    auto* pm = res->add_ports();
    pm->set_label(p.label);
    pm->set_value(p.value);
    pm->set_to(p.to);
    pm->set_host_ip(p.hostIp);
  }
  if (task.networkMode == "group") {
    auto* iso = cfg.mutable_network_isolation_spec();
    iso->set_mode(drivers::NetworkIsolationSpec::GROUP);
    iso->set_path(task.netnsPath);
  }

  Result<std::string> encoded = std::string();
  if (task.rawConfig) {
    encoded = encodeRaw(task.config);
  } else {
    auto interpolated = interpolateEnv(task.config, env);
    if (!interpolated.ok()) return interpolated.error().wrap("Failed Validation");
    encoded = encodeWithSpec(spec, *interpolated);
  }
  if (!encoded.ok()) return encoded.error().wrap("Failed Validation");
  cfg.set_msgpack_driver_config(*encoded);
  return cfg;
}

}  // namespace s2z::standin
