// TapDevice against the real kernel, each case in its own network namespace.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "agent/host_network.h"
#include "agent/rtnetlink.h"
#include "agent/tap_device.h"
#include "tests/agent/net_netns.h"

using namespace s2z;
using namespace s2z::agent;

namespace {

bool interfaceExists(const std::string& name) { return if_nametoindex(name.c_str()) != 0; }

// Sends `count` UDP datagrams "frame-<i>" to addr:port; returns how many
// sendto() accepted.
int sendUdp(const std::string& addr, uint16_t port, int count) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(s.valid());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  REQUIRE(inet_pton(AF_INET, addr.c_str(), &to.sin_addr) == 1);
  int sent = 0;
  for (int i = 0; i < count; ++i) {
    std::string payload = "frame-" + std::to_string(i);
    if (::sendto(s.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof to) == static_cast<ssize_t>(payload.size()))
      ++sent;
  }
  return sent;
}

// The UDP payload of an ethernet frame to dstPort, or empty if it is not one.
std::string udpPayload(const char* frame, ssize_t len, uint16_t dstPort) {
  constexpr size_t kEth = 14;
  if (len < static_cast<ssize_t>(kEth + sizeof(iphdr) + sizeof(udphdr))) return {};
  if (static_cast<uint8_t>(frame[12]) != 0x08 || frame[13] != 0x00) return {};  // IPv4
  iphdr ip;
  std::memcpy(&ip, frame + kEth, sizeof ip);
  if (ip.protocol != IPPROTO_UDP) return {};
  size_t udpOff = kEth + ip.ihl * 4u;
  udphdr udp;
  std::memcpy(&udp, frame + udpOff, sizeof udp);
  if (ntohs(udp.dest) != dstPort) return {};
  return std::string(frame + udpOff + sizeof udp, frame + len);
}

}  // namespace

TEST_CASE("tap: create, persists after our fd closes, reopen, destroy removes it") {
  testing::ScopedNetns ns("tap");
  const std::string name = "s2ztap0";
  uint32_t index = 0;
  {
    auto tap = TapDevice::create(name);
    REQUIRE_MESSAGE(tap.ok(), testing::why(tap));
    CHECK(tap->fd() >= 0);
    CHECK(tap->name() == name);
    index = tap->ifindex();
    CHECK(index == if_nametoindex(name.c_str()));
    // Link is up; IPv6 is off so the host sends the VM no unsolicited frames.
    CHECK(std::system(("ip link show " + name + " | grep -q '[<,]UP[,>]'").c_str()) == 0);
    CHECK(std::system(("grep -qx 1 /proc/sys/net/ipv6/conf/" + name + "/disable_ipv6").c_str()) == 0);
  }
  // Our fd is closed; the tap must still be there (persistent).
  CHECK(interfaceExists(name));

  auto again = TapDevice::reopen(name);
  REQUIRE_MESSAGE(again.ok(), testing::why(again));
  CHECK(again->ifindex() == index);
  CHECK(again->fd() >= 0);

  REQUIRE(again->destroy().ok());
  CHECK_FALSE(interfaceExists(name));
  CHECK(again->fd() == -1);
  CHECK(again->destroy().ok());  // idempotent

  auto missing = TapDevice::reopen(name);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);
}

TEST_CASE("tap: bad names are rejected") {
  CHECK(TapDevice::create("").error().code == ErrorCode::kInvalidArgument);
  CHECK(TapDevice::create("a-name-far-too-long-for-linux").error().code ==
        ErrorCode::kInvalidArgument);
}

TEST_CASE("tap: a held, unread tap queues frames for the VM; reading them back") {
  testing::ScopedNetns ns("tapq");
  auto tap = TapDevice::create("s2ztapq");
  REQUIRE_MESSAGE(tap.ok(), testing::why(tap));
  Lease lease{"10.89.0.2", "10.89.0.1", 24, "255.255.255.0"};
  REQUIRE(HostNetwork::plumb(tap->name(), lease, HostNetwork::macFor(lease.address)).ok());

  // Nobody reads the tap (the VM is "asleep"): the frames must wait in it.
  CHECK(sendUdp(lease.address, 9999, 5) == 5);
  int flags = ::fcntl(tap->fd(), F_GETFL);
  REQUIRE(::fcntl(tap->fd(), F_SETFL, flags | O_NONBLOCK) == 0);
  char frame[2048];
  int seen = 0;
  for (;;) {
    ssize_t n = ::read(tap->fd(), frame, sizeof frame);
    if (n < 0) {
      CHECK(errno == EAGAIN);
      break;
    }
    std::string payload = udpPayload(frame, n, 9999);
    if (payload.empty()) continue;  // e.g. IPv6 router solicitations
    CHECK(payload == "frame-" + std::to_string(seen));
    ++seen;
  }
  CHECK(seen == 5);
  REQUIRE(tap->destroy().ok());
}

TEST_CASE("tap: the queue holds txqueuelen frames; closing the last fd drops them") {
  testing::ScopedNetns ns("tapf");
  auto tap = TapDevice::create("s2ztapf");
  REQUIRE_MESSAGE(tap.ok(), testing::why(tap));
  Lease lease{"10.89.0.3", "10.89.0.1", 24, "255.255.255.0"};
  REQUIRE(HostNetwork::plumb(tap->name(), lease, HostNetwork::macFor(lease.address)).ok());

  sendUdp(lease.address, 9998, 1200);
  int flags = ::fcntl(tap->fd(), F_GETFL);
  REQUIRE(::fcntl(tap->fd(), F_SETFL, flags | O_NONBLOCK) == 0);
  char frame[2048];
  int queued = 0;
  ssize_t n;
  while ((n = ::read(tap->fd(), frame, sizeof frame)) >= 0)
    if (!udpPayload(frame, n, 9998).empty()) ++queued;
  CHECK(queued == 1000);

  // Without a holder the frames are gone: close, send, reopen, read nothing.
  std::string name = tap->name();
  { TapDevice closing = std::move(*tap); }  // our only fd is closed now
  CHECK(interfaceExists(name));
  sendUdp(lease.address, 9998, 3);
  auto back = TapDevice::reopen(name);
  REQUIRE(back.ok());
  ::fcntl(back->fd(), F_SETFL, ::fcntl(back->fd(), F_GETFL) | O_NONBLOCK);
  int after = 0;
  while ((n = ::read(back->fd(), frame, sizeof frame)) >= 0)
    if (!udpPayload(frame, n, 9998).empty()) ++after;
  CHECK(after == 0);
  REQUIRE(back->destroy().ok());
}

namespace {

// UDP payloads to port in every frame waiting in queue fd (non-blocking).
std::vector<std::string> readPayloads(int fd, uint16_t port) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::vector<std::string> out;
  char frame[2048];
  ssize_t n;
  while ((n = ::read(fd, frame, sizeof frame)) >= 0) {
    std::string p = udpPayload(frame, n, port);
    if (!p.empty()) out.push_back(p);
  }
  return out;
}

}  // namespace

TEST_CASE("tap: the sleep edge diverts frames to a fresh queue; reverting moves them back") {
  testing::ScopedNetns ns("tapd");
  auto tap = TapDevice::create("s2ztapd");
  REQUIRE_MESSAGE(tap.ok(), testing::why(tap));
  Lease lease{"10.89.0.4", "10.89.0.1", 24, "255.255.255.0"};
  REQUIRE(HostNetwork::plumb(tap->name(), lease, HostNetwork::macFor(lease.address)).ok());
  // The "VMM" holds the same open file as our VM queue.
  UniqueFd vmm(::fcntl(tap->fd(), F_DUPFD_CLOEXEC, 0));
  REQUIRE(vmm.valid());

  // Frames the VMM has not read yet stay in its queue (the divert waits up
  // to 100 ms for the VMM to read them; here nobody does).
  CHECK(sendUdp(lease.address, 9996, 2) == 2);
  REQUIRE(tap->divert().ok());
  CHECK(tap->fd() != vmm.get());
  CHECK(readPayloads(vmm.get(), 9996).size() == 2);
  CHECK(sendUdp(lease.address, 9997, 5) == 5);
  // The VMM's queue gets nothing new; the fresh queue holds all of them.
  CHECK(readPayloads(vmm.get(), 9997).empty());
  auto held = readPayloads(tap->fd(), 9997);
  CHECK(held.size() == 5);

  // A failed sleep: frames that waited in the fresh queue reach the VMM's.
  CHECK(sendUdp(lease.address, 9997, 3) == 3);
  REQUIRE(tap->revertDivert().ok());
  auto moved = readPayloads(vmm.get(), 9997);
  CHECK(moved == std::vector<std::string>{"frame-0", "frame-1", "frame-2"});
  CHECK(sendUdp(lease.address, 9997, 2) == 2);
  CHECK(readPayloads(vmm.get(), 9997).size() == 2);

  // A plugin restart: a new queue opens while the "VMM" holds its own (no
  // EBUSY), and adopting the VMM's detached queue attaches it again.
  REQUIRE(tap->divert().ok());
  tap->commitDivert();
  auto fresh = TapDevice::reopen(tap->name());
  REQUIRE_MESSAGE(fresh.ok(), testing::why(fresh));
  auto adopted = TapDevice::adopt(UniqueFd(::fcntl(vmm.get(), F_DUPFD_CLOEXEC, 0)), tap->name());
  REQUIRE_MESSAGE(adopted.ok(), testing::why(adopted));
  // Leave the adopted queue the only attached one: it must get every frame.
  { TapDevice closing = std::move(*fresh); }
  ifreq ifr{};
  ifr.ifr_flags = IFF_DETACH_QUEUE;
  REQUIRE(::ioctl(tap->fd(), TUNSETQUEUE, &ifr) == 0);
  CHECK(sendUdp(lease.address, 9997, 20) == 20);
  CHECK(readPayloads(vmm.get(), 9997).size() == 20);
  REQUIRE(tap->destroy().ok());
}
