// The leak inventory of issue 13: everything a task can leave behind on the
// host, taken once as a baseline before the task starts and again after
// DestroyTask. Scoped to what this test owns, since other engineers' tests
// run on the same machine: processes, links, routes and neighbours of the
// test's network namespace; tc BPF attachments there; the plugin's own fds
// (BPF programs, maps and links it holds included) and threads; mounts under
// the test's directory or of type bpf; the entries for the VM's address in
// the pinned s2z_addr map, and the names pinned under /sys/fs/bpf/s2z-kata;
// regular files under state_dir; the tasks' cgroups under Nomad's tree (the
// stand-in's wrangler makes them before StartTask and removes them after
// DestroyTask; the plugin makes any that are missing and removes them at
// DestroyTask).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/test_env.h"

namespace s2z::reliability {

struct Inventory {
  std::map<std::string, int> processes;      // netns processes but the plugin, by comm
  std::vector<std::string> links;
  std::string routesAndNeighbours;
  std::string tcAttachments;                 // bpftool net show, in the netns
  std::map<std::string, int> pluginFds;      // by kind: socket, pipe, anon_inode:bpf-map, a path, ...
  int pluginFdCount = 0;
  int pluginThreads = 0;
  std::map<std::string, int> pluginThreadNames;  // by comm
  std::vector<std::string> mounts;           // mount points under the test root, or bpf
  std::vector<std::string> pins;             // under /sys/fs/bpf/s2z-kata
  std::vector<std::string> addrMapKeys;      // s2z_addr keys in the test's subnet
  std::vector<std::string> stateFiles;
  std::vector<std::string> taskCgroups;       // <alloc_id>.<task>[.scope] directories under Nomad's parents

  static Inventory take(const integration::TestEnv& env, pid_t pluginPid, const std::string& subnetPrefix);
  // One line per difference from `baseline` ("" when none).
  std::string diff(const Inventory& baseline) const;
  std::string summary() const;
};

// The s2z_addr keys (dotted quads) that start with `subnetPrefix`.
std::vector<std::string> addrMapKeysIn(const std::string& subnetPrefix);

// Takes inventories until one equals `baseline` (threads and sockets of the
// gRPC server settle after the last stream ends) or `timeout`; returns the
// last difference ("" when back at baseline).
std::string waitForBaseline(const Inventory& baseline, const integration::TestEnv& env, pid_t pluginPid,
                            const std::string& subnetPrefix, std::chrono::milliseconds timeout);

}  // namespace s2z::reliability
