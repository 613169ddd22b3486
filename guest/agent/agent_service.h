// The protocol (proto/s2z/agent/v1/agent.proto), guest side: Hello handling,
// requests, the workload's exit event and acknowledgements. Owns the
// ReliableSession; all I/O goes through GuestChannel.
#pragma once

#include <cstdint>
#include <vector>

#include "guest/agent/guest_channel.h"
#include "guest/agent/root_filesystem.h"
#include "guest/agent/workload.h"
#include "guestlink/reliable_session.h"

namespace s2z::guest {

class AgentService {
 public:
  AgentService(GuestChannel& channel, Workload& workload, RootFilesystem& root)
      : channel_(channel), workload_(workload), root_(root) {}

  // Handles frames read from the channel, in order; then, if nothing else
  // carried the ack, sends a pure ack (an unsequenced frame with no body).
  void onFrames(const std::vector<agent::v1::Frame>& frames);

  // Sends WorkloadExited as a sequenced Event (kept until acknowledged).
  void onWorkloadExited(const ExitStatus& status);

  // True once the exit event went out and the host acknowledged every frame:
  // time to power off.
  bool finished() const { return exitEventSent_ && session_.unacknowledged() == 0; }

 private:
  // hostAck: the Hello frame's ack, the host's receive position.
  void handleHello(const agent::v1::Hello& hello, uint64_t hostAck);
  agent::v1::Response handleRequest(const agent::v1::Request& request);
  void startWorkload(const agent::v1::StartWorkload& spec, agent::v1::Response& response);
  void sendSequenced(agent::v1::Frame frame);

  GuestChannel& channel_;
  Workload& workload_;
  RootFilesystem& root_;
  guestlink::ReliableSession session_;
  bool sawSession_ = false;
  uint64_t sessionId_ = 0;
  bool refused_ = false;  // the connection's Hello had another protocol version
  bool exitEventSent_ = false;
};

}  // namespace s2z::guest
