// Environment for end-to-end tests of the built s2z-kata binary through the
// Nomad-client stand-in: a throw-away network namespace the plugin runs in
// (setns before exec), a unique state_dir and subnet, the test guest, a small
// HTTP client whose socket lives in the namespace, and host-state probes
// (links, routes, neighbours, processes). Everything is removed in the
// destructor, also when a test fails.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "standin/nomad_client.h"

namespace s2z::integration {

struct CommandResult {
  int exitCode = -1;
  std::string output;  // stdout and stderr together
};

// Runs argv (no shell) and captures its output.
CommandResult runCommand(const std::vector<std::string>& argv);

struct HttpReply {
  int status = 0;  // 0: no reply
  std::string body;
  std::string error;
};

std::string guestDir();
bool guestAvailable();
// The guest agent's kernel + initramfs (build/guest/agent-guest) and the
// Debian test root filesystem (scripts/build-rootfs.sh).
std::string agentGuestDir();
std::string testRootfs();
// The same Debian tree as an OCI image archive (scripts/build-rootfs.sh).
std::string testOciArchive();
bool agentGuestAvailable();

class TestEnv {
 public:
  TestEnv();   // creates the netns, the state dir and picks a subnet; throws on failure
  ~TestEnv();  // kills what is left in the netns, deletes it and the directories
  TestEnv(const TestEnv&) = delete;
  TestEnv& operator=(const TestEnv&) = delete;

  const std::string& netnsName() const { return netns_; }
  std::string netnsPath() const { return "/run/netns/" + netns_; }
  const std::string& root() const { return root_; }
  const std::string& stateDir() const { return stateDir_; }
  const std::string& subnet() const { return subnet_; }  // 10.89.N.0/24
  const std::string& subnetPrefix() const { return prefix_; }  // "10.89.N."

  // The agent's plugin config for this environment (qemu, the test guest).
  YAML::Node pluginConfig() const;
  // Stand-in options: the built plugin, launched inside the netns.
  standin::ClientOptions clientOptions() const;
  // The long-lived plugin of clientOptions() (no probe and validation run:
  // faster), the options first edited by `edit`; throws naming the error if
  // it does not load.
  std::unique_ptr<standin::NomadClient> loadPlugin(
      const std::function<void(standin::ClientOptions&)>& edit = {}) const;

  // One GET with Connection: close from inside the netns.
  HttpReply httpGet(const std::string& address, int port, const std::string& path,
                    std::chrono::milliseconds timeout) const;
  // Polls GET / until it answers 200; false after `timeout`.
  bool waitHttp(const std::string& address, int port, std::chrono::milliseconds timeout) const;

  // Host state inside the netns, for leak checks.
  std::vector<std::string> links() const;       // interface names except lo
  std::string routes() const;                   // `ip route` + `ip neigh` text
  std::vector<int> pids() const;                // processes in the netns
  std::string describePids() const;             // "pid: cmdline" lines, for messages
  // True once `pid` is the only process in the netns (short-lived probes such
  // as `qemu --version` may come and go); false after `timeout`.
  bool onlyProcessLeft(int pid, std::chrono::milliseconds timeout) const;
  // Regular files left under state_dir (relative paths).
  std::vector<std::string> stateFiles() const;

 private:
  std::string netns_;
  std::string root_;
  std::string stateDir_;
  std::string subnet_;
  std::string prefix_;
};

// Events of the allocation whose message starts with `word`, ignoring case.
size_t eventsMatching(const standin::NomadClient& c, const std::string& allocId,
                      const std::string& word);

// A YAML task for the test guest: ports http 28080 -> 8080, 256 MiB.
standin::TaskFile webTask(const std::string& extraConfigYaml = "");

// A guest-agent task on the test root filesystem: `command` with `args`,
// 256 MiB; extraTaskYaml adds top-level keys (user, env), extraConfigYaml
// keys of config {}.
standin::TaskFile agentTask(const std::string& command, const std::vector<std::string>& args,
                            const std::string& extraTaskYaml = "",
                            const std::string& extraConfigYaml = "");

}  // namespace s2z::integration
