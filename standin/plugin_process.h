// Launches a plugin binary the way go-plugin does for the Nomad client: env
// with the magic cookie and protocol versions, stdout/stderr as pipes, the
// first stdout line read as the handshake (docs/nomad-plugin-protocol.md
// §1.1–1.3, 1.6). Further stdout is drained and recorded (Nomad discards it);
// stderr lines are parsed as hclog JSON and logged.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "standin/handshake.h"
#include "standin/hclog_line.h"

namespace s2z::standin {

// How long waitExit waits, after the exit, for the plugin's output pipes to
// close.
inline constexpr std::chrono::milliseconds kOutputDrainWait{1000};

struct LaunchOptions {
  std::string path;
  std::vector<std::string> args;
  // Added to (or overriding) our own environment, which the child inherits.
  std::map<std::string, std::string> extraEnv;
  // Removed from the child's environment (e.g. the magic cookie, for tests).
  std::vector<std::string> unsetEnv;
  bool setMagicCookie = true;
  std::string protocolVersions = "2";
  // If set, the child joins this network namespace (setns) before exec.
  std::string netnsPath;
  std::chrono::milliseconds startTimeout{60000};  // go-plugin default
};

class PluginProcess {
 public:
  ~PluginProcess();  // SIGKILLs the plugin if still running, reaps it, stops readers
  PluginProcess(const PluginProcess&) = delete;
  PluginProcess& operator=(const PluginProcess&) = delete;

  // fork + exec only (no handshake yet). Fails if the binary cannot be
  // executed or the netns cannot be entered (kSystem with errno).
  static Result<std::unique_ptr<PluginProcess>> spawn(const LaunchOptions& options);

  // spawn + awaitHandshake; on a handshake failure the process is killed.
  static Result<std::unique_ptr<PluginProcess>> launch(const LaunchOptions& options);

  // Waits for the first stdout line and validates it (see parseHandshake).
  // Fails with kTimeout after `timeout`, kUnavailable if the plugin exited or
  // closed stdout first, kInvalidArgument for a bad line.
  Result<Handshake> awaitHandshake(std::chrono::milliseconds timeout);

  pid_t pid() const { return pid_; }
  const Handshake& handshake() const { return handshake_; }

  // Every stdout line seen, the handshake line first.
  std::vector<std::string> stdoutLines() const;
  std::vector<HclogLine> stderrLines() const;
  std::string stderrText() const;  // raw stderr lines joined by '\n'
  // Number of JSON stderr lines breaking the hclog contract.
  int logViolationCount() const;
  int nonJsonLineCount() const;

  // Waits until the plugin exits; returns its wait status (as from waitpid).
  // By then its stdout and stderr are read to the end (or for at most
  // kOutputDrainWait more, when a child of the plugin keeps them open).
  // Fails with kTimeout if it is still running after `timeout`.
  Result<int> waitExit(std::chrono::milliseconds timeout);
  bool running();
  // SIGKILL to the plugin pid only (not its process group).
  void sigkill();

 private:
  PluginProcess() = default;
  void readStdout();
  void readStderr();
  // Reads lines from `fd` until EOF or stop; calls onLine for each.
  template <typename F> void readLines(int fd, F onLine);

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd stdoutFd_;
  UniqueFd stderrFd_;
  UniqueFd stopRead_;   // readers poll this; closing stopWrite_ wakes them
  UniqueFd stopWrite_;
  std::vector<int> acceptedVersions_;
  Handshake handshake_;

  std::mutex reapMu_;      // serializes waitpid
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::vector<std::string> stdoutLines_;
  bool stdoutClosed_ = false;
  std::vector<HclogLine> stderrLines_;
  bool stderrClosed_ = false;
  std::optional<int> waitStatus_;

  std::thread stdoutThread_;
  std::thread stderrThread_;
};

// Human-readable form of a wait status ("exit 1", "signal 9").
std::string describeWaitStatus(int status);

}  // namespace s2z::standin
