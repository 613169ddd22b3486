// Exactly-once, in-order delivery over a channel that drops connections: the
// guest's VMM exits at every sleep (its socket with it), and the plugin may be
// killed at any time. Each end numbers what it sends, keeps it until the peer
// acknowledges it and sends it again after a reconnect; the receiver delivers
// each number once. Pure bookkeeping: no I/O, used by both ends (guest/agent
// and agent/guest_channel).
//
//   connect:  host --Hello{session, ack}-->  guest --HelloReply{ack}--> host
//             both then resend every kept frame above the peer's ack
//   send:     frame.seq = ++last; frame.ack = delivered; kept until acked
//   receive:  seq <= delivered: duplicate, dropped; seq == delivered+1:
//             delivered; above: a gap (lost frame), dropped and resent later
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "s2z/agent/v1/agent.pb.h"

namespace s2z::guestlink {

class ReliableSession {
 public:
  // Numbers an outgoing frame, stamps the current ack and keeps a copy.
  agent::v1::Frame send(agent::v1::Frame frame);
  // Stamps the current ack on an unsequenced frame (Hello, HelloReply, ack).
  agent::v1::Frame unsequenced(agent::v1::Frame frame) const;

  // An incoming frame: applies its ack; true when it is to be delivered
  // (the next in order, or unsequenced).
  bool receive(const agent::v1::Frame& frame);

  // The peer's receive position at (re)connect: drops what it has and returns
  // the kept frames above it, in order, to be sent again (re-stamped).
  std::vector<agent::v1::Frame> resendAfter(uint64_t peerAck);

  // A new peer session (a restarted plugin): its numbers start again at 1.
  void resetReceive() { delivered_ = 0; }
  // Both directions start again at 1, nothing kept (a new peer altogether).
  void restart() {
    lastSent_ = delivered_ = ackSent_ = 0;
    kept_.clear();
  }
  // The seq the next new frame will get (HelloReply.next_seq when nothing
  // is kept).
  uint64_t nextSeq() const { return lastSent_ + 1; }
  // The peer's frames continue at `seq` (HelloReply.next_seq): a receiver in
  // a new session, which has delivered nothing of them, starts there.
  void expectFrom(uint64_t seq) {
    if (seq > delivered_ + 1) delivered_ = seq - 1;
  }

  uint64_t delivered() const { return delivered_; }
  size_t unacknowledged() const { return kept_.size(); }
  // True when a frame was delivered since the last ack went out.
  bool ackOwed() const { return delivered_ != ackSent_; }
  void ackSent() { ackSent_ = delivered_; }

 private:
  void dropAcked(uint64_t ack);

  uint64_t lastSent_ = 0;
  uint64_t delivered_ = 0;
  uint64_t ackSent_ = 0;
  std::deque<agent::v1::Frame> kept_;
};

}  // namespace s2z::guestlink
