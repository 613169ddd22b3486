#include "guestlink/reliable_session.h"

namespace s2z::guestlink {

agent::v1::Frame ReliableSession::send(agent::v1::Frame frame) {
  frame.set_seq(++lastSent_);
  frame.set_ack(delivered_);
  ackSent_ = delivered_;
  kept_.push_back(frame);
  return frame;
}

agent::v1::Frame ReliableSession::unsequenced(agent::v1::Frame frame) const {
  frame.set_seq(0);
  frame.set_ack(delivered_);
  return frame;
}

void ReliableSession::dropAcked(uint64_t ack) {
  while (!kept_.empty() && kept_.front().seq() <= ack) kept_.pop_front();
}

bool ReliableSession::receive(const agent::v1::Frame& frame) {
  dropAcked(frame.ack());
  if (frame.seq() == 0) return true;
  if (frame.seq() != delivered_ + 1) return false;
  delivered_ = frame.seq();
  return true;
}

std::vector<agent::v1::Frame> ReliableSession::resendAfter(uint64_t peerAck) {
  dropAcked(peerAck);
  std::vector<agent::v1::Frame> again;
  for (agent::v1::Frame f : kept_) {
    f.set_ack(delivered_);
    again.push_back(std::move(f));
  }
  ackSent_ = delivered_;
  return again;
}

}  // namespace s2z::guestlink
