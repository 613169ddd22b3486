#include "agent/task_cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace s2z::agent {

namespace {

bool within(const std::filesystem::path& path, const std::filesystem::path& dir, std::filesystem::path& rel) {
  auto r = path.lexically_relative(dir);
  if (r.empty() || *r.begin() == "..") return false;
  rel = r == "." ? std::filesystem::path{} : r;
  return true;
}

const CgroupMount* v1Hierarchy(const std::vector<CgroupMount>& mounts, const std::string& controller) {
  for (const auto& m : mounts) {
    if (!m.v2 && std::find(m.controllers.begin(), m.controllers.end(), controller) != m.controllers.end()) return &m;
  }
  return nullptr;
}

std::vector<std::string> splitCommas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

std::vector<std::filesystem::path> TaskCgroup::joined() const {
  auto all = own;
  if (!cpuset.empty()) all.push_back(cpuset);
  return all;
}

std::vector<CgroupMount> readCgroupMounts() {
  // "<id> <parent> <dev> <root> <mountpoint> <options> [optional...] - <fstype> <source> <super options>"
  std::vector<CgroupMount> mounts;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, dir, word;
    fields >> id >> parent >> dev >> root >> dir;
    while (fields >> word && word != "-") {}
    std::string type, source, options;
    fields >> type >> source >> options;
    if (type == "cgroup2") mounts.push_back({dir, true, {}});
    if (type == "cgroup") mounts.push_back({dir, false, splitCommas(options)});
  }
  return mounts;
}

Result<TaskCgroup> resolveTaskCgroup(const std::filesystem::path& nomadPath, const std::string& scope,
                                     const std::vector<CgroupMount>& mounts) {
  auto path = nomadPath.lexically_normal();
  const CgroupMount* home = nullptr;
  std::filesystem::path rel;
  for (const auto& m : mounts) {
    std::filesystem::path r;
    if (within(path, m.dir, r) && (!home || m.dir.string().size() > home->dir.string().size())) {
      home = &m;
      rel = r;
    }
  }
  if (!home) return makeError(ErrorCode::kUnimplemented, "task cgroup: " + path.string() + " is not on a cgroup mount");
  TaskCgroup cg;
  if (home->v2) {
    cg.own = {path};
    cg.memory = path;
    cg.cpu = path;
    return cg;
  }
  const auto& ctl = home->controllers;
  if (std::find(ctl.begin(), ctl.end(), "cpuset") == ctl.end()) {
    return makeError(ErrorCode::kUnimplemented, "task cgroup: " + path.string() + " is a cgroup v1 path outside the cpuset hierarchy");
  }
  if (scope.empty()) {
    return makeError(ErrorCode::kUnimplemented, "task cgroup: " + path.string() + " is on cgroup v1 and the task's scope name is unknown");
  }
  // <parent>/share, or <parent>/reserve/<scope>: Nomad 1.7+.
  std::filesystem::path parent;
  if (rel.filename() == "share") {
    parent = rel.parent_path();
  } else if (rel.parent_path().filename() == "reserve" && rel.filename() == scope) {
    parent = rel.parent_path().parent_path();
    cg.reservedCpuset = true;
  } else {
    return makeError(ErrorCode::kUnimplemented, "task cgroup: " + path.string() +
                                                    " is not a Nomad 1.7+ cpuset partition (<parent>/share or "
                                                    "<parent>/reserve/" + scope + ")");
  }
  cg.v1 = true;
  cg.cpuset = path;
  for (const char* controller : {"memory", "cpu", "freezer"}) {
    const CgroupMount* m = v1Hierarchy(mounts, controller);
    if (!m) continue;  // not mounted on this host: the task does without it
    auto dir = m->dir / parent / scope;
    if (std::find(cg.own.begin(), cg.own.end(), dir) == cg.own.end()) cg.own.push_back(dir);
    if (std::string(controller) == "memory") cg.memory = dir;
    if (std::string(controller) == "cpu") cg.cpu = dir;
  }
  return cg;
}

TaskCgroup taskCgroupOnThisHost(const std::filesystem::path& nomadPath, const std::string& scope) {
  if (nomadPath.empty()) return {};
  auto resolved = resolveTaskCgroup(nomadPath, scope, readCgroupMounts());
  return resolved.ok() ? *resolved : TaskCgroup{};
}

Result<void> ensureTaskCgroup(const TaskCgroup& cgroup) {
  if (!cgroup.cpuset.empty() && ::access(cgroup.cpuset.c_str(), F_OK) != 0) {
    return Error{ErrorCode::kFailedPrecondition, errno, "task cgroup: Nomad's cpuset partition " + cgroup.cpuset.string() + " missing"};
  }
  for (const auto& dir : cgroup.own) {
    if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) continue;
    if (errno == ENOENT) {
      return Error{ErrorCode::kFailedPrecondition, errno, "task cgroup: parent " + dir.parent_path().string() + " missing"};
    }
    return systemError("task cgroup: create " + dir.string());
  }
  return okResult();
}

Result<void> removeTaskCgroup(const TaskCgroup& cgroup) {
  Result<void> first = okResult();
  for (const auto& dir : cgroup.own) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && first.ok()) {
      first = systemError("task cgroup: remove " + dir.string());
    }
  }
  return first;
}

Result<uint64_t> cgroupMemoryCharge(const TaskCgroup& cgroup) {
  if (cgroup.memory.empty()) return makeError(ErrorCode::kNotFound, "task cgroup: no memory controller");
  auto file = cgroup.memory / (cgroup.v1 ? "memory.usage_in_bytes" : "memory.current");
  std::ifstream in(file);
  uint64_t bytes = 0;
  if (!(in >> bytes)) return makeError(ErrorCode::kNotFound, "no " + file.string());
  return bytes;
}

Result<uint64_t> cgroupOomKills(const TaskCgroup& cgroup) {
  if (cgroup.memory.empty()) return makeError(ErrorCode::kNotFound, "task cgroup: no memory controller");
  auto file = cgroup.memory / (cgroup.v1 ? "memory.oom_control" : "memory.events");
  std::ifstream in(file);
  for (std::string key; in >> key;) {
    uint64_t value = 0;
    if (!(in >> value)) break;
    if (key == "oom_kill") return value;
  }
  return makeError(ErrorCode::kNotFound, "no oom_kill in " + file.string());
}

Result<CpuThrottling> cgroupCpuThrottling(const TaskCgroup& cgroup) {
  if (cgroup.cpu.empty()) return makeError(ErrorCode::kNotFound, "task cgroup: no cpu controller");
  auto file = cgroup.cpu / "cpu.stat";
  std::ifstream in(file);
  if (!in) return makeError(ErrorCode::kNotFound, "no " + file.string());
  CpuThrottling throttling;
  for (std::string key; in >> key;) {
    uint64_t value = 0;
    if (!(in >> value)) break;
    if (key == "nr_throttled") throttling.periods = value;
    else if (key == "throttled_time") throttling.nanoseconds = value;             // v1
    else if (key == "throttled_usec") throttling.nanoseconds = value * 1000;      // v2
  }
  return throttling;
}

}  // namespace s2z::agent
