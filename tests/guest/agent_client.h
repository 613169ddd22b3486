// The host end of the agent protocol, as small as a test needs: a unix-socket
// connection to QEMU's s2z.agent chardev, guestlink framing and a
// ReliableSession that survives reconnects. Throws std::runtime_error on
// timeouts and protocol errors (doctest reports them as failures).
#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <optional>
#include <vector>

#include "common/unique_fd.h"
#include "guestlink/frame_codec.h"
#include "guestlink/reliable_session.h"

namespace s2z::guest::testing {

using std::chrono::milliseconds;
namespace pb = s2z::agent::v1;

class AgentClient {
 public:
  explicit AgentClient(std::filesystem::path socket) : socket_(std::move(socket)) {}

  // Connects (retrying while QEMU creates the socket), sends Hello and waits
  // for HelloReply; then resends every kept frame the guest has not acked.
  // hellos > 1 writes that many Hellos at once, as a host that repeated its
  // Hello while a restored guest was slow to run would have.
  pb::HelloReply connect(uint64_t session, milliseconds timeout, uint32_t version = 1, int hellos = 1);
  // HelloReplies read on every connection so far.
  int helloReplies() const { return helloReplies_; }
  // Drops the connection without a word (what a sleeping VMM or a killed
  // plugin does to the guest).
  void disconnect() { fd_.reset(); decoder_.reset(); }

  // Sends a sequenced Request with a fresh id; returns the id.
  uint64_t send(pb::Request request);
  // send() and wait for the Response with that id.
  pb::Response call(pb::Request request, milliseconds timeout);
  // Waits for the Response with this id (delivered frames are remembered).
  pb::Response waitResponse(uint64_t id, milliseconds timeout);
  // Waits for the next Event.
  pb::Event waitEvent(milliseconds timeout);
  // Sends a pure ack: everything delivered so far is acknowledged.
  void ack();

  // Every sequenced frame the session delivered, in order (for duplicate checks).
  const std::vector<pb::Frame>& delivered() const { return delivered_; }

 private:
  void write(const pb::Frame& frame);
  void writeBytes(const std::string& bytes);
  // Reads one frame (waiting up to the deadline); nullopt on timeout.
  std::optional<pb::Frame> readFrame(std::chrono::steady_clock::time_point deadline);
  // Next frame the session delivers; nullopt on timeout.
  std::optional<pb::Frame> nextDelivered(std::chrono::steady_clock::time_point deadline);

  std::filesystem::path socket_;
  UniqueFd fd_;
  guestlink::FrameDecoder decoder_;
  guestlink::ReliableSession session_;
  uint64_t nextId_ = 1;
  int helloReplies_ = 0;
  std::vector<pb::Frame> delivered_;
  std::deque<pb::Frame> unclaimed_;  // delivered, not yet taken by a wait*()
};

// Request builders.
pb::Request startWorkload(std::vector<std::string> argv, std::string user = "", std::string workingDir = "",
                          std::vector<std::string> env = {});
pb::Request signalProcess(int signo);

}  // namespace s2z::guest::testing
