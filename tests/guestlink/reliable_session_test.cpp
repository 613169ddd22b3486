// Two ReliableSessions joined by a lossy "wire" that the tests cut, as a
// VMM's exit at a sleep cuts the guest channel.
#include <doctest/doctest.h>

#include <vector>

#include "guestlink/reliable_session.h"

using namespace s2z::guestlink;
namespace pb = s2z::agent::v1;

namespace {

pb::Frame signalFrame(int signo) {
  pb::Frame f;
  f.mutable_request()->mutable_signal_process()->set_signal(signo);
  return f;
}

pb::Frame exitedFrame(int code) {
  pb::Frame f;
  f.mutable_event()->mutable_workload_exited()->set_exit_code(code);
  return f;
}

// Delivers frames to `to`, returning what it accepted.
std::vector<pb::Frame> deliver(ReliableSession& to, const std::vector<pb::Frame>& frames) {
  std::vector<pb::Frame> accepted;
  for (const auto& f : frames) {
    if (to.receive(f)) accepted.push_back(f);
  }
  return accepted;
}

}  // namespace

TEST_CASE("a frame lost with the connection is sent again after the reconnect, and delivered once") {
  ReliableSession host, guest;
  pb::Frame a = host.send(signalFrame(10));
  pb::Frame b = host.send(signalFrame(12));
  // Only a got through before the VMM exited.
  REQUIRE(deliver(guest, {a}).size() == 1);
  (void)b;
  // Reconnect: the guest says it has 1; the host resends 2 only.
  auto again = host.resendAfter(guest.delivered());
  REQUIRE(again.size() == 1);
  CHECK(again[0].request().signal_process().signal() == 12);
  CHECK(deliver(guest, again).size() == 1);
  // A duplicate (the host resent before learning of the delivery) is dropped.
  CHECK(deliver(guest, again).empty());
  CHECK(guest.delivered() == 2);
}

TEST_CASE("acknowledged frames are forgotten; unacknowledged ones survive any number of reconnects") {
  ReliableSession host, guest;
  pb::Frame exited = guest.send(exitedFrame(3));
  CHECK(guest.unacknowledged() == 1);
  for (int reconnect = 0; reconnect < 3; ++reconnect) {
    // The host was away (asleep); the guest resends on every Hello.
    auto again = guest.resendAfter(host.delivered());
    REQUIRE(again.size() == 1);
    CHECK(again[0].event().workload_exited().exit_code() == 3);
  }
  REQUIRE(deliver(host, {exited}).size() == 1);
  CHECK(host.ackOwed());
  // The host's ack (any frame it sends) releases the guest's copy.
  pb::Frame ack = host.unsequenced(pb::Frame{});
  host.ackSent();
  CHECK_FALSE(host.ackOwed());
  CHECK(deliver(guest, {ack}).size() == 1);
  CHECK(guest.unacknowledged() == 0);
  CHECK(guest.resendAfter(host.delivered()).empty());
}

TEST_CASE("a frame after a gap is not delivered out of order") {
  ReliableSession host, guest;
  pb::Frame a = host.send(signalFrame(1));
  pb::Frame b = host.send(signalFrame(2));
  CHECK(deliver(guest, {b}).empty());
  CHECK(deliver(guest, {a, b}).size() == 2);
}

TEST_CASE("a restarted host numbers from 1 again: the guest resets its receive side and resends all it kept") {
  ReliableSession oldHost, guest;
  REQUIRE(deliver(guest, {oldHost.send(signalFrame(1)), oldHost.send(signalFrame(2))}).size() == 2);
  REQUIRE(deliver(oldHost, {guest.send(signalFrame(0)), guest.send(signalFrame(0))}).size() == 2);
  REQUIRE(deliver(guest, {oldHost.unsequenced(pb::Frame{})}).size() == 1);  // acked: 1, 2
  guest.send(exitedFrame(0));  // seq 3, never acknowledged: the host died
  ReliableSession newHost;
  guest.resetReceive();
  auto kept = guest.resendAfter(newHost.delivered());
  REQUIRE(kept.size() == 1);
  // The new host knows nothing of the guest's numbers: a seq-3 frame is a gap...
  CHECK(deliver(newHost, kept).empty());
  // ...until HelloReply.next_seq tells it where they are.
  newHost.expectFrom(kept.front().seq());
  CHECK(deliver(newHost, kept).size() == 1);
  CHECK(deliver(guest, {newHost.send(signalFrame(15))}).size() == 1);
}
