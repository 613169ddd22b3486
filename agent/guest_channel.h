// The host end of the guest agent's channel (guest/agent): a unix socket the
// VMM listens on, whose other end is the guest's "s2z.agent" virtio-serial
// port (QEMU) or, through the VMM's hybrid-vsock multiplexer, the agent's
// vsock port (Cloud Hypervisor: vmm/hybrid_vsock.h). The socket dies with the
// VMM at every sleep and is connected again after every restore (and by a
// new plugin process after a restart);
// guestlink::ReliableSession makes that invisible: nothing is lost or
// delivered twice, and a request made while no VMM runs is kept and sent at
// the next connect. One reader thread per connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "agent/exec_stream.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "guestlink/frame_codec.h"
#include "guestlink/reliable_session.h"
#include "s2z/agent/v1/agent.pb.h"

namespace s2z::agent {

namespace pb = ::s2z::agent::v1;

// Where the channel's unix socket leads.
struct ChannelAddress {
  std::filesystem::path socket;
  // Set: the socket is a hybrid-vsock multiplexer and each connection first
  // asks for this guest port. Unset: the socket is the guest's port itself.
  std::optional<uint32_t> vsockPort;
};

class GuestChannel {
 public:
  // Called on the reader thread when the guest reports the workload's exit,
  // before the acknowledgement goes out: the guest powers off once it has
  // it, so the handler must have recorded the result when it returns.
  using ExitHandler = std::function<void(const pb::WorkloadExited&)>;
  // Called on the reader thread with the workload's output when the guest
  // relays it (WorkloadOutput); the frame is acknowledged once it returns,
  // so what it wrote is what the guest may forget.
  using OutputHandler = std::function<void(const pb::WorkloadOutput&)>;

  GuestChannel(ChannelAddress address, ExitHandler onExit, OutputHandler onOutput = nullptr);
  ~GuestChannel();
  GuestChannel(const GuestChannel&) = delete;
  GuestChannel& operator=(const GuestChannel&) = delete;

  // Connects and says Hello until the agent answers (it may still be
  // booting) or the timeout passes (kTimeout). Frames kept from before are
  // sent again. The reply tells the workload's state and the agent's version.
  Result<pb::HelloReply> connect(std::chrono::milliseconds timeout);

  // Drops the connection (its VMM is about to exit). Idempotent.
  void disconnect();

  // A new guest (a cold boot replaced the snapshot's): drops the connection
  // and everything of the old guest's session — kept frames, sequence
  // numbers, unanswered requests (their callers get kUnavailable), exec
  // streams (ended with `why`) — and starts a session with a new id, so the
  // next connect() speaks to the new agent from sequence 1.
  void startNewSession(const std::string& why);
  bool connected() const;

  // Sends a request and waits for its response; kTimeout if none came in
  // time (the request stays queued and is still delivered once), and an
  // answered error becomes kFailedPrecondition with the guest's message.
  Result<pb::Response> call(pb::Request request, std::chrono::milliseconds timeout);

  // Sends a request without waiting: delivered in order with the others,
  // its answer dropped (an error is logged). For an exec's stdin and resizes.
  void post(pb::Request request);

  // Exec'd commands (ExecProcess): a new random id whose ExecOutput and
  // ExecExited events go to the returned stream until closeExec.
  std::pair<uint64_t, std::shared_ptr<ExecStream>> openExec();
  void closeExec(uint64_t execId);
  // Every open exec stream ends with `why` (the task is over).
  void abandonExecs(const std::string& why);

 private:
  // The socket and its reader thread, unless connected already (no Hello).
  Result<void> open(std::chrono::milliseconds timeout);
  void readLoop(int fd);
  void handle(const pb::Frame& frame);
  // Under mutex_: an exec's output or exit to its stream.
  void routeExecEvent(const pb::Event& event);
  // Under mutex_: writes bytes to the connection; a failure drops it.
  void writeLocked(const pb::Frame& frame);

  const ChannelAddress address_;
  const ExitHandler onExit_;
  const OutputHandler onOutput_;
  uint64_t sessionId_;  // guarded by mutex_

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  guestlink::ReliableSession session_;
  UniqueFd fd_;                 // the connection; invalid when none
  bool alive_ = false;          // fd_ is connected (false once the peer went)
  std::thread reader_;
  std::optional<pb::HelloReply> hello_;  // answer to this connection's Hello
  std::map<uint64_t, pb::Response> responses_;
  std::set<uint64_t> posted_;  // request ids whose answers nobody waits for
  std::map<uint64_t, std::shared_ptr<ExecStream>> execs_;
  uint64_t nextRequestId_ = 1;
  uint64_t abandonedBefore_ = 0;  // requests below this id belong to an old guest
};

}  // namespace s2z::agent
