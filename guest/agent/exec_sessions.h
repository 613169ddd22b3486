// Commands exec'd beside the workload (ExecProcess: Nomad's `alloc exec` and
// script checks). Each has pipes, or one pseudo-terminal, that the agent's
// poll loop services: stdin is fed from WriteStream, output goes to the host
// as ExecOutput events, the end as ExecExited.
//
//   state     how it gets there                 what happens
//   running   ExecProcess: spawned              output read while the host keeps up
//                                               (mayRead), stdin written as it drains
//   ended     its pid reaped                    what its pipes hold is read and sent
//                                               at once, then eof per stream and
//                                               ExecExited; the session is forgotten
//
// A grandchild that keeps a pipe open does not delay the end: output written
// after the exec'd process itself has exited is not collected (docker does
// the same for a detached child). Stdin close on a terminal is its EOF
// character (^D), as a terminal user would type it.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "guest/agent/launch_plan.h"
#include "s2z/agent/v1/agent.pb.h"

namespace s2z::guest {

class ExecSessions {
 public:
  using SendEvent = std::function<void(agent::v1::Event)>;
  explicit ExecSessions(SendEvent send) : send_(std::move(send)) {}

  // Spawns the plan (spawn.h) with pipes or a terminal from the root's own
  // devpts instance. kAlreadyExists for an exec_id in use.
  Result<pid_t> start(const std::string& rootDir, const LaunchPlan& plan, const agent::v1::ExecProcess& request);
  Result<void> writeStdin(const agent::v1::WriteStream& request);
  Result<void> resize(const agent::v1::TtyWinResize& request);
  Result<void> signal(uint64_t execId, int signo);

  // The poll set: appends the sessions' fds (output only when mayRead)...
  void addPollFds(std::vector<pollfd>& fds, bool mayRead);
  // ...and handles what poll() reported for them; `from` is where
  // addPollFds started appending.
  void onPolled(const std::vector<pollfd>& fds, size_t from);

  // A reaped child: true if it was an exec'd process (its session ends).
  bool onReaped(pid_t pid, int waitStatus);

  // SIGKILLs every exec'd process (a new host session: nobody reads them).
  void killAll();
  size_t size() const { return sessions_.size(); }

 private:
  struct Session {
    uint64_t id = 0;
    pid_t pid = 0;
    bool tty = false;
    UniqueFd input;   // stdin pipe, or the terminal (tty: also the output)
    UniqueFd stdoutFd;
    UniqueFd stderrFd;  // none with a tty
    std::string pendingInput;
    bool closeInput = false;  // after pendingInput is written
  };
  enum class Stream { kStdout, kStderr };
  struct PollEntry {
    uint64_t id;
    int fd;
  };

  // Reads once (drain: until nothing is left) from one output; at EOF sends
  // the stream's eof and closes it.
  void readOutput(Session& s, Stream stream, bool drain);
  void writeInput(Session& s);
  void sendOutput(uint64_t id, Stream stream, std::string data, bool eof);

  SendEvent send_;
  std::map<uint64_t, Session> sessions_;
  std::vector<PollEntry> polled_;  // parallel to the fds addPollFds appended
};

}  // namespace s2z::guest
