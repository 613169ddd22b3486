// Runs one CNI plugin binary the way libcni (through containerd's go-cni,
// which Nomad uses) does: the network config on stdin, CNI_* in the
// environment, the result (or a CNI error) on stdout. The plugin runs in
// the calling thread's network namespace (the stand-in host's).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::cni_test {

// Where Debian's containernetworking-plugins puts the plugins.
inline constexpr const char* kCniPath = "/usr/lib/cni";

struct CniInvocation {
  std::string command;      // ADD, DEL, CHECK
  std::string containerId;  // Nomad: the alloc id
  std::string netns;        // the alloc's netns path
  std::string ifname = "eth0";
  std::string args;         // CNI_ARGS ("K=V;K=V")
};

// Runs <kCniPath>/<type> with `config` on stdin; returns its stdout.
// Fails: kSystem if it cannot start, kInternal with the plugin's output if
// it exits non-zero.
Result<std::string> runCniPlugin(const std::string& type, const CniInvocation& call,
                                 const std::string& config);

// Runs argv (no shell) in the calling thread's netns; kInternal with the
// output if it exits non-zero.
Result<std::string> runTool(const std::vector<std::string>& argv);

}  // namespace s2z::cni_test
