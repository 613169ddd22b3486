// The protocol (proto/s2z/agent/v1/agent.proto), guest side: Hello handling,
// requests, the workload's exit event and acknowledgements. Owns the
// ReliableSession; all I/O goes through GuestChannel.
#pragma once

#include <cstdint>
#include <vector>

#include "guest/agent/exec_sessions.h"
#include "guest/agent/guest_channel.h"
#include "guest/agent/root_filesystem.h"
#include "guest/agent/workload.h"
#include "guestlink/reliable_session.h"

namespace s2z::guest {

class AgentService {
 public:
  AgentService(GuestChannel& channel, Workload& workload, RootFilesystem& root)
      : channel_(channel),
        workload_(workload),
        root_(root),
        execs_([this](agent::v1::Event event) { sendEvent(std::move(event)); }) {}

  // Handles frames read from the channel, in order; then, if nothing else
  // carried the ack, sends a pure ack (an unsequenced frame with no body).
  void onFrames(const std::vector<agent::v1::Frame>& frames);

  // Sends WorkloadExited as a sequenced Event (kept until acknowledged).
  void onWorkloadExited(const ExitStatus& status);

  ExecSessions& execs() { return execs_; }
  // Sends an event as sequenced (the workload's output relayed by the loop).
  void sendEvent(agent::v1::Event event);
  // Exec'd processes and the relayed workload output may produce output
  // only while the host keeps up: at most this many frames unacknowledged.
  bool execOutputWanted() const { return session_.unacknowledged() < kMaxUnacknowledgedFrames; }

  // True once the exit event went out and the host acknowledged every frame:
  // time to power off.
  bool finished() const { return exitEventSent_ && session_.unacknowledged() == 0; }

 private:
  // hostAck: the Hello frame's ack, the host's receive position.
  void handleHello(const agent::v1::Hello& hello, uint64_t hostAck);
  agent::v1::Response handleRequest(const agent::v1::Request& request);
  void startWorkload(const agent::v1::StartWorkload& spec, agent::v1::Response& response);
  void execProcess(const agent::v1::ExecProcess& request, agent::v1::Response& response);
  void sendSequenced(agent::v1::Frame frame);

  static constexpr size_t kMaxUnacknowledgedFrames = 32;

  GuestChannel& channel_;
  Workload& workload_;
  RootFilesystem& root_;
  ExecSessions execs_;
  // The workload's request as started: exec'd commands share its user,
  // environment and working directory.
  agent::v1::StartWorkload workloadSpec_;
  guestlink::ReliableSession session_;
  bool sawSession_ = false;
  uint64_t sessionId_ = 0;
  bool refused_ = false;  // the connection's Hello had another protocol version
  bool exitEventSent_ = false;
};

}  // namespace s2z::guest
