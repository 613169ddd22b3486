// A task as the stand-in reads it from YAML, mirroring a jobspec task:
//   name: web
//   driver: s2z-kata
//   resources: { cpu: 500, memory: 256, memory_max: 512, cores: 1 }
//   ports: [ { label: http, value: 28080, to: 8080, host_ip: 10.89.0.1 } ]
//   env: { KEY: value }
//   network: { mode: group, path: /var/run/netns/x }   # default host
//   mounts: [ { host_path: /dev/loop3, task_path: /data, readonly: false } ]
//   config: { ... }            # the task's driver config body
//   raw_config: false          # true: send config without schema checks
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/result.h"
#include "standin/template_render.h"

namespace s2z::standin {

struct PortSpec {
  std::string label;
  int value = 0;  // host port
  int to = 0;     // port inside the workload, 0 = unset
  std::string hostIp;
};

// What Nomad's volume hook makes of a group `volume` and the task's
// `volume_mount` (a host volume's path, or a CSI volume's staging path).
struct MountSpec {
  std::string hostPath;
  std::string taskPath;
  bool readonly = false;
};

struct TaskFile {
  std::string name = "task";
  std::string driver;
  std::string jobName = "example";
  std::string groupName = "group";
  std::string ns = "default";
  int cpuMhz = 100;
  int memoryMb = 300;
  int memoryMaxMb = 0;
  int cores = 0;  // resources.cores: reserved cores (the node picks which)
  std::vector<PortSpec> ports;
  std::map<std::string, std::string> env;
  std::string networkMode = "host";  // host | group
  std::string netnsPath;             // for group mode
  std::string user;
  std::vector<TemplateSpec> templates;  // rendered into the task dir before StartTask
  std::vector<MountSpec> mounts;       // TaskConfig.mounts
  YAML::Node config;                 // driver config body (may be null)
  bool rawConfig = false;

  // Parses the YAML text; fails with kInvalidArgument naming the bad key.
  static Result<TaskFile> parse(const std::string& yamlText);
  // Reads and parses a file; kNotFound/kSystem if unreadable.
  static Result<TaskFile> load(const std::string& path);
  static Result<TaskFile> fromNode(const YAML::Node& root);
};

// Reads a YAML file into a node (used for plugin configs too).
Result<YAML::Node> loadYamlFile(const std::string& path);

}  // namespace s2z::standin
