#include "standin/nomad_cgroups.h"

#include <linux/magic.h>
#include <signal.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

namespace s2z::standin {

namespace {

const std::string kRoot = "/sys/fs/cgroup";
const std::string kV1Parent = "nomad";          // the client's default cgroup_parent on v1
const std::string kV2Parent = "nomad.slice";    // ... and on v2
const char* const kV1TaskControllers[] = {"freezer", "cpu", "memory"};

bool writeValue(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

std::string readValue(const std::string& path) {
  std::string value;
  std::getline(std::ifstream(path), value);
  return value;
}

// A kernel cpu list ("0-3,6") as its cores, and back ("1,2"; an empty list
// as a newline, which clears a cpuset: an empty write never reaches it).
std::set<int> parseCpuList(const std::string& text) {
  std::set<int> cores;
  std::stringstream in(text);
  for (std::string range; std::getline(in, range, ',');) {
    int first = -1, last = -1;
    char dash = 0;
    std::istringstream r(range);
    if (!(r >> first)) continue;
    last = (r >> dash >> last) ? last : first;
    for (int c = first; c <= last; ++c) cores.insert(c);
  }
  return cores;
}

std::string cpuListText(const std::set<int>& cores) {
  std::string text;
  for (int c : cores) text += (text.empty() ? "" : ",") + std::to_string(c);
  return text.empty() ? "\n" : text;
}

bool makeDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return !ec;
}

// Removes an emptied cgroup, giving killed processes a moment to go (the
// wrangler's Cleanup retries with a backoff too).
void removeWhenEmpty(const std::string& dir) {
  for (int i = 0; i < 50 && std::filesystem::exists(dir); ++i) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (std::filesystem::exists(dir)) spdlog::warn("stand-in: cgroup {} could not be removed", dir);
}

bool initV2() {
  const std::string nomad = kRoot + "/" + kV2Parent;
  if (!makeDir(nomad + "/share.slice") || !makeDir(nomad + "/reserve.slice")) return false;
  for (const auto& dir : {kRoot, nomad, nomad + "/share.slice", nomad + "/reserve.slice"}) {
    for (const char* controller : {"+cpuset", "+cpu", "+memory", "+io", "+pids"}) {
      writeValue(dir + "/cgroup.subtree_control", controller);  // one at a time: a missing one fails alone
    }
  }
  return true;
}

bool initV1() {
  for (const char* controller : {"freezer", "memory", "cpu", "cpuset"}) {
    if (!makeDir(kRoot + "/" + controller + "/" + kV1Parent)) return false;
  }
  // The cpuset tree: cores and mems are not inherited (clone_children 0),
  // so each level gets them written; the share partition gets every usable
  // core (the partition manager's value with nothing reserved).
  const std::string cpuset = kRoot + "/cpuset", nomad = cpuset + "/" + kV1Parent;
  const std::string cores = readValue(cpuset + "/cpuset.cpus"), mems = readValue(cpuset + "/cpuset.mems");
  bool ok = writeValue(nomad + "/cgroup.clone_children", "0") && writeValue(nomad + "/cpuset.mems", mems) &&
            writeValue(nomad + "/cpuset.cpus", cores);
  for (const char* partition : {"share", "reserve"}) {
    const std::string dir = nomad + "/" + partition;
    ok = ok && makeDir(dir) && writeValue(dir + "/cgroup.clone_children", "0") && writeValue(dir + "/cpuset.mems", mems);
  }
  return ok && writeValue(nomad + "/share/cpuset.cpus", cores);
}

}  // namespace

NomadCgroups NomadCgroups::init() {
  struct statfs fs {};
  if (::statfs(kRoot.c_str(), &fs) != 0) return off();
  if (fs.f_type == CGROUP2_SUPER_MAGIC) {
    if (initV2()) return NomadCgroups(Mode::kV2, kRoot);
  } else if (std::filesystem::exists(kRoot + "/cpuset/cpuset.cpus")) {
    if (initV1()) return NomadCgroups(Mode::kV1, kRoot);
  }
  spdlog::warn("stand-in: Nomad's cgroup tree could not be made under {}; tasks get no cpuset_cgroup", kRoot);
  return off();
}

std::string NomadCgroups::v1Dir(const std::string& controller, const std::string& allocId,
                                const std::string& task) const {
  return root_ + "/" + controller + "/" + kV1Parent + "/" + allocId + "." + task;
}

std::string NomadCgroups::v2Scope(const std::string& allocId, const std::string& task, bool reserved) const {
  return root_ + "/" + kV2Parent + (reserved ? "/reserve.slice/" : "/share.slice/") + allocId + "." + task + ".scope";
}

std::string NomadCgroups::v2Scope(const std::string& allocId, const std::string& task) const {
  auto reserved = v2Scope(allocId, task, true);
  return std::filesystem::exists(reserved) ? reserved : v2Scope(allocId, task, false);
}

std::string NomadCgroups::v1ReservedCpuset(const std::string& allocId, const std::string& task) const {
  return root_ + "/cpuset/" + kV1Parent + "/reserve/" + allocId + "." + task;
}

std::string NomadCgroups::partitionCpus(const char* partition) const {
  return mode_ == Mode::kV1 ? root_ + "/cpuset/" + kV1Parent + "/" + partition + "/cpuset.cpus"
                            : root_ + "/" + kV2Parent + "/" + partition + ".slice/cpuset.cpus";
}

Result<std::string> NomadCgroups::reserveCores(int n) const {
  if (n <= 0 || mode_ == Mode::kOff) return std::string();
  auto usable = parseCpuList(readValue(mode_ == Mode::kV1 ? root_ + "/cpuset/cpuset.cpus" : root_ + "/cpuset.cpus.effective"));
  if (static_cast<size_t>(n) > usable.size()) {
    return makeError(ErrorCode::kInvalidArgument, "resources.cores: " + std::to_string(n) + " asked, the node has " +
                                                      std::to_string(usable.size()));
  }
  std::set<int> last(std::prev(usable.end(), n), usable.end());
  return cpuListText(last);
}

void NomadCgroups::movePartitionCores(const std::string& cores, bool reserve) const {
  auto moved = parseCpuList(cores);
  auto share = parseCpuList(readValue(partitionCpus("share")));
  auto reserved = parseCpuList(readValue(partitionCpus("reserve")));
  for (int c : moved) {
    if (reserve) {
      share.erase(c);
      reserved.insert(c);
    } else {
      reserved.erase(c);
      share.insert(c);
    }
  }
  // As the partition writes them: share first, then reserve.
  if (!writeValue(partitionCpus("share"), cpuListText(share)) ||
      !writeValue(partitionCpus("reserve"), cpuListText(reserved))) {
    spdlog::warn("stand-in: failed to move cores {} {} the reserve partition", cores, reserve ? "into" : "out of");
  }
}

std::string NomadCgroups::cpusetCgroup(const std::string& allocId, const std::string& task,
                                       const std::string& cores) const {
  switch (mode_) {
    case Mode::kV2: return v2Scope(allocId, task, !cores.empty());
    case Mode::kV1: return cores.empty() ? root_ + "/cpuset/" + kV1Parent + "/share" : v1ReservedCpuset(allocId, task);
    case Mode::kOff: break;
  }
  return "";
}

std::string NomadCgroups::memoryCgroup(const std::string& allocId, const std::string& task) const {
  return controllerCgroup("memory", allocId, task);
}

std::string NomadCgroups::controllerCgroup(const std::string& controller, const std::string& allocId,
                                           const std::string& task) const {
  switch (mode_) {
    case Mode::kV2: return v2Scope(allocId, task);
    case Mode::kV1: return v1Dir(controller, allocId, task);
    case Mode::kOff: break;
  }
  return "";
}

std::string NomadCgroups::memoryChargeFile() const {
  return mode_ == Mode::kV1 ? "memory.usage_in_bytes" : "memory.current";
}

void NomadCgroups::setUpTask(const std::string& allocId, const std::string& task, const std::string& cores) const {
  if (mode_ == Mode::kOff) return;
  if (!cores.empty()) movePartitionCores(cores, true);
  std::vector<std::string> dirs;
  if (mode_ == Mode::kV2) dirs = {v2Scope(allocId, task, !cores.empty())};
  if (mode_ == Mode::kV1) {
    for (const char* controller : kV1TaskControllers) dirs.push_back(v1Dir(controller, allocId, task));
  }
  for (const auto& dir : dirs) {
    if (!makeDir(dir)) spdlog::warn("stand-in: failed to create task cgroup {}", dir);
  }
  if (mode_ == Mode::kV1 && !cores.empty()) {
    // Setup's inheritMems: the mems of reserve, and no cores.
    const std::string cpuset = v1ReservedCpuset(allocId, task);
    const std::string mems = readValue(root_ + "/cpuset/" + kV1Parent + "/reserve/cpuset.mems");
    if (!makeDir(cpuset) || !writeValue(cpuset + "/cpuset.mems", mems)) {
      spdlog::warn("stand-in: failed to create task cgroup {}", cpuset);
    }
  }
}

void NomadCgroups::tearDownTask(const std::string& allocId, const std::string& task, const std::string& cores) const {
  if (mode_ == Mode::kV2) {
    const std::string scope = v2Scope(allocId, task);
    if (std::filesystem::exists(scope)) writeValue(scope + "/cgroup.kill", "1");
    removeWhenEmpty(scope);
  }
  if (mode_ == Mode::kV1) {
    const std::string freezer = v1Dir("freezer", allocId, task);
    if (std::filesystem::exists(freezer) && writeValue(freezer + "/freezer.state", "FROZEN")) {
      std::ifstream procs(freezer + "/cgroup.procs");
      for (pid_t pid = 0; procs >> pid;) ::kill(pid, SIGKILL);
      writeValue(freezer + "/freezer.state", "THAWED");
    }
    for (const char* controller : kV1TaskControllers) removeWhenEmpty(v1Dir(controller, allocId, task));
    if (std::filesystem::exists(v1ReservedCpuset(allocId, task))) removeWhenEmpty(v1ReservedCpuset(allocId, task));
  }
  if (mode_ != Mode::kOff && !cores.empty()) movePartitionCores(cores, false);
}

}  // namespace s2z::standin
