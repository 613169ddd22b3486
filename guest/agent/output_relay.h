// The workload's stdout and stderr carried over the host channel as
// WorkloadOutput events, for guests without the "s2z.stdout"/"s2z.stderr"
// ports (Cloud Hypervisor has no virtio-serial; "s2z.output=channel" on the
// kernel command line asks for it on QEMU too). Two pipes: the workload gets
// the write ends, the agent's poll loop reads the other ends while the host
// keeps up (mayRead) and sends what it read as sequenced events.
//
// The agent holds the write ends for the VM's life, as a port would stay
// open: the streams never see EOF, and output of the workload's orphans
// still flows after it exited. A host that falls behind stops the reading;
// the pipes fill (64 KiB each) and the writers block, as on a full port.
#pragma once

#include <poll.h>

#include <functional>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "s2z/agent/v1/agent.pb.h"

namespace s2z::guest {

class OutputRelay {
 public:
  using SendEvent = std::function<void(agent::v1::Event)>;
  static Result<OutputRelay> create();

  // Write ends for the workload, borrowed.
  int stdoutFd() const { return stdoutWrite_.get(); }
  int stderrFd() const { return stderrWrite_.get(); }

  // The poll set: appends the read ends when mayRead...
  void addPollFds(std::vector<pollfd>& fds, bool mayRead);
  // ...and sends what poll() reported readable; `from` is where addPollFds
  // started appending.
  void onPolled(const std::vector<pollfd>& fds, size_t from, const SendEvent& send);
  // Sends whatever the pipes hold now: the workload exited, and its last
  // words go before its exit event.
  void drain(const SendEvent& send);

 private:
  OutputRelay(UniqueFd outRead, UniqueFd outWrite, UniqueFd errRead, UniqueFd errWrite);
  // Reads once (drain: until the pipe is empty) and sends what it got.
  static void relay(int fd, agent::v1::ExecOutput::Stream stream, bool drain, const SendEvent& send);

  UniqueFd stdoutRead_, stdoutWrite_, stderrRead_, stderrWrite_;
  size_t polled_ = 0;  // how many fds the last addPollFds appended
};

}  // namespace s2z::guest
