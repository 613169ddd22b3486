#include "standin/task_file.h"

#include <fstream>
#include <set>
#include <sstream>

namespace s2z::standin {

namespace {

Error taskFileError(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, "task file: " + message);
}

template <typename T>
Result<T> scalar(const YAML::Node& node, const std::string& key) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception& e) {
    return taskFileError("\"" + key + "\": " + e.what());
  }
}

Result<void> checkKeys(const YAML::Node& node, const std::set<std::string>& allowed,
                       const std::string& where) {
  if (!node.IsMap()) return taskFileError(where + " must be a map");
  for (const auto& kv : node) {
    auto key = kv.first.as<std::string>();
    if (!allowed.count(key)) return taskFileError("unknown key \"" + key + "\" in " + where);
  }
  return okResult();
}

Result<void> parseResources(const YAML::Node& node, TaskFile& t) {
  S2Z_TRY(checkKeys(node, {"cpu", "memory", "memory_max", "cores"}, "resources"), "resources");
  if (node["cpu"]) {
    auto v = scalar<int>(node["cpu"], "resources.cpu");
    if (!v.ok()) return v.error();
    t.cpuMhz = *v;
  }
  if (node["memory"]) {
    auto v = scalar<int>(node["memory"], "resources.memory");
    if (!v.ok()) return v.error();
    t.memoryMb = *v;
  }
  if (node["memory_max"]) {
    auto v = scalar<int>(node["memory_max"], "resources.memory_max");
    if (!v.ok()) return v.error();
    t.memoryMaxMb = *v;
  }
  if (node["cores"]) {
    auto v = scalar<int>(node["cores"], "resources.cores");
    if (!v.ok()) return v.error();
    if (*v < 0) return taskFileError("resources.cores must not be negative");
    t.cores = *v;
  }
  return okResult();
}

Result<void> parsePorts(const YAML::Node& node, TaskFile& t) {
  if (!node.IsSequence()) return taskFileError("ports must be a list");
  for (const auto& p : node) {
    S2Z_TRY(checkKeys(p, {"label", "value", "to", "host_ip"}, "ports[]"), "ports");
    PortSpec port;
    if (!p["label"]) return taskFileError("ports[]: label is required");
    port.label = p["label"].as<std::string>();
    if (p["value"]) {
      auto v = scalar<int>(p["value"], "ports.value");
      if (!v.ok()) return v.error();
      port.value = *v;
    }
    if (p["to"]) {
      auto v = scalar<int>(p["to"], "ports.to");
      if (!v.ok()) return v.error();
      port.to = *v;
    }
    if (p["host_ip"]) port.hostIp = p["host_ip"].as<std::string>();
    t.ports.push_back(std::move(port));
  }
  return okResult();
}

}  // namespace

Result<TaskFile> TaskFile::fromNode(const YAML::Node& root) {
  static const std::set<std::string> kKeys = {
      "name", "driver", "job", "group", "namespace", "resources", "ports", "env",
      "network", "user", "template", "mounts", "config", "raw_config"};
  S2Z_TRY(checkKeys(root, kKeys, "task"), "task");
  TaskFile t;
  if (root["name"]) t.name = root["name"].as<std::string>();
  if (root["driver"]) t.driver = root["driver"].as<std::string>();
  if (root["job"]) t.jobName = root["job"].as<std::string>();
  if (root["group"]) t.groupName = root["group"].as<std::string>();
  if (root["namespace"]) t.ns = root["namespace"].as<std::string>();
  if (root["user"]) t.user = root["user"].as<std::string>();
  if (root["resources"]) S2Z_TRY(parseResources(root["resources"], t), "task");
  if (root["ports"]) S2Z_TRY(parsePorts(root["ports"], t), "task");
  if (root["env"]) {
    if (!root["env"].IsMap()) return taskFileError("env must be a map");
    for (const auto& kv : root["env"]) {
      t.env[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
  }
  if (root["network"]) {
    const YAML::Node& n = root["network"];
    S2Z_TRY(checkKeys(n, {"mode", "path"}, "network"), "task");
    if (n["mode"]) t.networkMode = n["mode"].as<std::string>();
    if (n["path"]) t.netnsPath = n["path"].as<std::string>();
    if (t.networkMode != "host" && t.networkMode != "group") {
      return taskFileError("network.mode must be host or group");
    }
  }
  if (root["template"]) {
    const YAML::Node& list = root["template"];
    if (!list.IsSequence()) return taskFileError("template must be a list");
    for (const auto& n : list) {
      S2Z_TRY(checkKeys(n, {"destination", "data", "change_mode", "change_signal", "perms"},
                        "template"),
              "task");
      TemplateSpec spec;
      if (!n["destination"]) return taskFileError("template needs destination");
      spec.destination = n["destination"].as<std::string>();
      if (n["data"]) spec.data = n["data"].as<std::string>();
      if (n["change_mode"]) spec.changeMode = n["change_mode"].as<std::string>();
      if (n["change_signal"]) spec.changeSignal = n["change_signal"].as<std::string>();
      if (n["perms"]) spec.perms = std::stoul(n["perms"].as<std::string>(), nullptr, 8);
      if (spec.changeMode != "restart" && spec.changeMode != "signal" && spec.changeMode != "noop") {
        return taskFileError("template change_mode must be restart, signal or noop");
      }
      if (spec.changeMode == "signal" && spec.changeSignal.empty()) {
        return taskFileError("template change_mode signal needs change_signal");
      }
      t.templates.push_back(spec);
    }
  }
  if (root["mounts"]) {
    const YAML::Node& list = root["mounts"];
    if (!list.IsSequence()) return taskFileError("mounts must be a list");
    for (const auto& n : list) {
      S2Z_TRY(checkKeys(n, {"host_path", "task_path", "readonly"}, "mounts"), "task");
      if (!n["host_path"] || !n["task_path"]) return taskFileError("a mount needs host_path and task_path");
      MountSpec m;
      m.hostPath = n["host_path"].as<std::string>();
      m.taskPath = n["task_path"].as<std::string>();
      if (n["readonly"]) {
        auto v = scalar<bool>(n["readonly"], "mounts.readonly");
        if (!v.ok()) return v.error();
        m.readonly = *v;
      }
      t.mounts.push_back(m);
    }
  }
  if (root["config"]) t.config = YAML::Clone(root["config"]);
  if (root["raw_config"]) {
    auto v = scalar<bool>(root["raw_config"], "raw_config");
    if (!v.ok()) return v.error();
    t.rawConfig = *v;
  }
  return t;
}

Result<TaskFile> TaskFile::parse(const std::string& yamlText) {
  YAML::Node root;
  try {
    root = YAML::Load(yamlText);
  } catch (const YAML::Exception& e) {
    return taskFileError(std::string("YAML: ") + e.what());
  }
  return fromNode(root);
}

Result<YAML::Node> loadYamlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return systemError("open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return YAML::Load(ss.str());
  } catch (const YAML::Exception& e) {
    return makeError(ErrorCode::kInvalidArgument, path + ": YAML: " + e.what());
  }
}

Result<TaskFile> TaskFile::load(const std::string& path) {
  auto node = loadYamlFile(path);
  if (!node.ok()) return node.error();
  auto t = fromNode(*node);
  if (!t.ok()) return t.error().wrap(path);
  return t;
}

}  // namespace s2z::standin
