#include "tests/reliability/inventory.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace s2z::reliability {

namespace fs = std::filesystem;
using integration::runCommand;

namespace {

constexpr char kPinRoot[] = "/sys/fs/bpf/s2z-kata";

std::string comm(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string c;
  std::getline(in, c);
  return c.empty() ? "?" : c;
}

// "socket:[123]" -> "socket", "pipe:[45]" -> "pipe"; "anon_inode:bpf-map",
// "anon_inode:[eventfd]" and paths as they are.
std::string fdKind(const std::string& target) {
  for (const char* kind : {"socket", "pipe"}) {
    if (target.rfind(std::string(kind) + ":[", 0) == 0) return kind;
  }
  return target;
}

std::vector<std::string> mountsOf(const std::string& root) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, devno, rootField, point;
    f >> id >> parent >> devno >> rootField >> point;
    auto dash = line.find(" - ");
    std::string type;
    if (dash != std::string::npos) std::istringstream(line.substr(dash + 3)) >> type;
    if (point.rfind(root, 0) == 0 || type == "bpf") out.push_back(type + " " + point);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return "[" + s + "]";
}

std::string join(const std::map<std::string, int>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += (s.empty() ? "" : ", ") + k + "×" + std::to_string(v);
  return "{" + s + "}";
}

}  // namespace

std::vector<std::string> addrMapKeysIn(const std::string& subnetPrefix) {
  std::vector<std::string> out;
  auto r = runCommand({"bpftool", "-j", "map", "dump", "pinned", std::string(kPinRoot) + "/v1/s2z_addr"});
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  // Not pinned yet (no plugin has run on this host): nothing in any subnet.
  if (r.exitCode != 0 && !std::filesystem::exists(std::string(kPinRoot) + "/v1/s2z_addr")) return out;
  if (!j.is_array()) return {"(s2z_addr unreadable: " + r.output.substr(0, 200) + ")"};
  for (const auto& e : j) {
    if (!e.contains("key") || !e["key"].is_array() || e["key"].size() != 4) continue;
    std::string addr;
    for (const auto& b : e["key"]) {
      if (!addr.empty()) addr += ".";
      addr += std::to_string(std::stoi(b.get<std::string>(), nullptr, 16));
    }
    if (addr.rfind(subnetPrefix, 0) == 0) out.push_back(addr);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Inventory Inventory::take(const integration::TestEnv& env, pid_t pluginPid, const std::string& subnetPrefix) {
  Inventory inv;
  for (int pid : env.pids()) {
    if (pid != pluginPid) inv.processes[comm(pid)]++;
  }
  inv.links = env.links();
  std::sort(inv.links.begin(), inv.links.end());
  inv.routesAndNeighbours = env.routes();
  inv.tcAttachments = runCommand({"ip", "netns", "exec", env.netnsName(), "bpftool", "net", "show"}).output;
  std::string proc = "/proc/" + std::to_string(pluginPid);
  std::error_code ec;
  for (const auto& fd : fs::directory_iterator(proc + "/fd", ec)) {
    auto target = fs::read_symlink(fd.path(), ec);
    inv.pluginFds[ec ? "?" : fdKind(target.string())]++;
    inv.pluginFdCount++;
  }
  for (auto it = fs::directory_iterator(proc + "/task", ec); !ec && it != fs::directory_iterator(); ++it) {
    inv.pluginThreads++;
    std::ifstream in(it->path() / "comm");
    std::string name;
    std::getline(in, name);
    inv.pluginThreadNames[name]++;
  }
  inv.mounts = mountsOf(env.root());
  for (auto it = fs::recursive_directory_iterator(kPinRoot, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    inv.pins.push_back(it->path().string());
  }
  std::sort(inv.pins.begin(), inv.pins.end());
  inv.addrMapKeys = addrMapKeysIn(subnetPrefix);
  inv.stateFiles = env.stateFiles();
  std::sort(inv.stateFiles.begin(), inv.stateFiles.end());
  // Where Nomad's client puts tasks' cgroups (standin/nomad_cgroups.h).
  for (const char* parent : {"/sys/fs/cgroup/memory/nomad", "/sys/fs/cgroup/cpu/nomad", "/sys/fs/cgroup/freezer/nomad",
                             "/sys/fs/cgroup/nomad.slice/share.slice"}) {
    for (auto it = fs::directory_iterator(parent, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      if (it->is_directory()) inv.taskCgroups.push_back(it->path().string());
    }
    ec.clear();
  }
  std::sort(inv.taskCgroups.begin(), inv.taskCgroups.end());
  return inv;
}

namespace {

template <typename T>
std::string show(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) return "\n" + v;
  else if constexpr (std::is_same_v<T, int>) return std::to_string(v);
  else return join(v);
}

template <typename T>
void diffLine(std::ostringstream& out, const char* what, const T& now, const T& base) {
  if (now == base) return;
  out << what << ": now " << show(now) << "; baseline " << show(base) << "\n";
}

}  // namespace

std::string Inventory::diff(const Inventory& b) const {
  std::ostringstream out;
  diffLine(out, "processes in the netns (besides the plugin)", processes, b.processes);
  diffLine(out, "links", links, b.links);
  diffLine(out, "routes and neighbours", routesAndNeighbours, b.routesAndNeighbours);
  diffLine(out, "tc BPF attachments", tcAttachments, b.tcAttachments);
  diffLine(out, "plugin fds by kind", pluginFds, b.pluginFds);
  diffLine(out, "plugin fd count", pluginFdCount, b.pluginFdCount);
  diffLine(out, "plugin threads", pluginThreads, b.pluginThreads);
  diffLine(out, "plugin threads by name", pluginThreadNames, b.pluginThreadNames);
  diffLine(out, "mounts", mounts, b.mounts);
  diffLine(out, "pinned BPF objects", pins, b.pins);
  diffLine(out, "s2z_addr entries in the test subnet", addrMapKeys, b.addrMapKeys);
  diffLine(out, "files under state_dir", stateFiles, b.stateFiles);
  diffLine(out, "task cgroups", taskCgroups, b.taskCgroups);
  return out.str();
}

std::string Inventory::summary() const {
  std::ostringstream out;
  out << "processes " << join(processes) << ", links " << links.size() << ", plugin fds " << pluginFdCount
      << " " << join(pluginFds) << ", threads " << pluginThreads << " " << join(pluginThreadNames) << ", mounts " << mounts.size() << ", pins "
      << pins.size() << ", addr entries " << addrMapKeys.size() << ", state files " << join(stateFiles)
      << ", task cgroups " << taskCgroups.size();
  return out.str();
}

std::string waitForBaseline(const Inventory& baseline, const integration::TestEnv& env, pid_t pluginPid,
                            const std::string& subnetPrefix, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string d;
  for (;;) {
    d = Inventory::take(env, pluginPid, subnetPrefix).diff(baseline);
    if (d.empty() || std::chrono::steady_clock::now() > deadline) return d;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace s2z::reliability
