// Issue 13, case 9: the BPF_PROG_TEST_RUN fixture table of the TC classifier
// (tc_idle.bpf.c, s2z_tap_egress) over every kind of frame that can leave a
// task's tap toward its VM. One program with private maps runs the rows in
// order; each row sets its preconditions (instance state, health mask, the
// ring), runs one frame with skb->mark, and checks the verdict and every map
// effect: the counters (packets, bytes, health packets, last activity), the
// state, and the wake records in the ring buffer (count, ifindex, timestamp).
//
// The contract the rows pin down (bpf/README.md, tc_idle.bpf.c):
//  - the classifier drops nothing (TC_ACT_OK) but a client's new connection
//    while a cold-booted guest does not serve yet (BOOTING, whose port it
//    notes): a sleeping VM's frames wait in the held tap;
//  - every frame is activity, whatever its protocol (the program does not
//    parse the frame): IPv4, IPv6 (also after extension headers, even one
//    whose length runs past the frame), fragments, ARP, RST/FIN, VLAN, runts.
//    The tap carries only traffic for the VM (the driver turns IPv6 off on it
//    and installs a permanent neighbour, so the host sends nothing on its
//    own); an ARP request or a FIN toward a sleeping VM is real traffic;
//  - a frame whose mark carries every bit of the health mask counts only as
//    a health packet and never wakes; mask 0 turns this off;
//  - SLEEPING -> WAKING with exactly one wake record per sleep, however many
//    frames (retransmitted SYNs) follow; a full ring leaves SLEEPING so the
//    next frame tries again;
//  - frames of a tap that is not registered pass untouched.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpf/s2z_types.h"
#include "bpf/tc_idle_program.h"
#include "packets.h"
#include "tests/err_text.h"

namespace s2z::bpf {
namespace {

using test::Bytes;
using test::concat;

constexpr uint32_t kLo = 1;            // test_run needs a real device: lo exists everywhere
constexpr uint32_t kOtherTap = 4242;   // another registered instance; never gets a frame
constexpr uint32_t kMark = 0x4000;     // a one-bit health mark
constexpr uint32_t kWideMark = 0x5a000;  // several bits (the agent integration test's)
constexpr uint32_t kKeep = 0;          // setState: leave the state as the previous row left it

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

// ---- frames ------------------------------------------------------------------

Bytes v4Tcp(uint8_t flags, size_t payload = 0) {
  return concat({test::ethHeader(ETH_P_IP), test::ipv4Header(IPPROTO_TCP, 20 + payload),
                 test::tcpHeader(8080, flags), Bytes(payload, 'x')});
}
Bytes v4Syn() { return v4Tcp(kSyn); }
Bytes v4Udp(size_t payload = 32, const uint8_t* dst = test::kVmMac) {
  return concat({test::ethHeader(ETH_P_IP, dst), test::ipv4Header(IPPROTO_UDP, 8 + payload),
                 test::udpHeader(53, 33000, payload), Bytes(payload, 'd')});
}
Bytes v4IcmpEcho() {
  Bytes icmp = {8, 0, 0, 0, 0x12, 0x34, 0, 1};  // echo request, id, seq
  icmp.insert(icmp.end(), 56, 0x42);
  return concat({test::ethHeader(ETH_P_IP), test::ipv4Header(IPPROTO_ICMP, icmp.size()), icmp});
}
// A 3000-byte UDP datagram cut into three fragments of 1480, 1480 and 48.
Bytes v4Fragment(int index) {
  const size_t total = 8 + 3000;
  if (index == 0) {
    return concat({test::ethHeader(ETH_P_IP), test::ipv4Header(IPPROTO_UDP, 1480, true, 0),
                   test::udpHeader(5000, 5001, 3000), Bytes(1472, 'f')});
  }
  const size_t offset = 1480 * static_cast<size_t>(index);
  const size_t len = index == 1 ? 1480 : total - offset;
  return concat({test::ethHeader(ETH_P_IP),
                 test::ipv4Header(IPPROTO_UDP, len, index == 1, static_cast<uint16_t>(offset / 8)),
                 Bytes(len, 'f')});
}
Bytes v4WithOptions() {
  return concat({test::ethHeader(ETH_P_IP), test::ipv4Header(IPPROTO_TCP, 20, false, 0, 2),
                 test::tcpHeader(8080, kSyn)});
}
Bytes v4FullSize() { return v4Tcp(kAck | kPsh, 1500 - 40); }  // 1514 bytes on the wire
// IP protocol 253 (experimental): nothing the program could know.
// (A frame shorter than its IPv4 header is refused by BPF_PROG_TEST_RUN
// itself, EINVAL, and the stack never sends one.)
Bytes v4UnknownProtocol() {
  return concat({test::ethHeader(ETH_P_IP), test::ipv4Header(253, 16), Bytes(16, 'u')});
}
Bytes v6Tcp(uint8_t flags) {
  return concat({test::ethHeader(ETH_P_IPV6), test::ipv6Header(IPPROTO_TCP, 20),
                 test::tcpHeader(8080, flags)});
}
Bytes v6Udp() {
  return concat({test::ethHeader(ETH_P_IPV6), test::ipv6Header(IPPROTO_UDP, 8 + 16),
                 test::udpHeader(53, 33000, 16), Bytes(16, 'd')});
}
Bytes v6NeighbourSolicitation() {
  Bytes ns = {135, 0, 0, 0, 0, 0, 0, 0};  // type, code, checksum, reserved
  const uint8_t target[16] = {0xfd, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  ns.insert(ns.end(), target, target + 16);
  return concat({test::ethHeader(ETH_P_IPV6), test::ipv6Header(IPPROTO_ICMPV6, ns.size()), ns});
}
Bytes v6Fragment(bool first) {
  Bytes body = first ? concat({test::udpHeader(5000, 5001, 2000), Bytes(1224, 'f')})
                     : Bytes(776, 'f');
  return concat({test::ethHeader(ETH_P_IPV6), test::ipv6Header(IPPROTO_FRAGMENT, 8 + body.size()),
                 test::ipv6FragmentHeader(IPPROTO_UDP, first ? 0 : 154, first), body});
}
// IPv6 whose TCP/UDP header follows extension headers. The program reads
// nothing of an IPv6 frame past its EtherType (the tap carries no IPv6 to
// the guest, see the top; only IPv4 SYNs are held while BOOTING), so each of
// these is activity like any other frame, a sleeping VM's wake, a health
// packet when marked, and never a BOOTING drop; no header length, true or
// false, can lead it past the end of the frame.
Bytes v6After(uint8_t firstHeader, const Bytes& extensions, const Bytes& upper) {
  return concat({test::ethHeader(ETH_P_IPV6),
                 test::ipv6Header(firstHeader, extensions.size() + upper.size()), extensions,
                 upper});
}
Bytes v6Syn() { return test::tcpHeader(8080, kSyn); }
Bytes v6HopByHopSyn() {
  return v6After(IPPROTO_HOPOPTS, test::ipv6OptionsHeader(IPPROTO_TCP, 8), v6Syn());
}
Bytes v6RoutingSyn() {
  return v6After(IPPROTO_ROUTING, test::ipv6RoutingHeader(IPPROTO_TCP), v6Syn());
}
Bytes v6DestOptsUdp() {
  return v6After(IPPROTO_DSTOPTS, test::ipv6OptionsHeader(IPPROTO_UDP, 16),
                 concat({test::udpHeader(53, 33000, 16), Bytes(16, 'd')}));
}
Bytes v6ChainSyn() {  // hop-by-hop, then destination options, then TCP
  return v6After(IPPROTO_HOPOPTS,
                 concat({test::ipv6OptionsHeader(IPPROTO_DSTOPTS, 8),
                         test::ipv6OptionsHeader(IPPROTO_TCP, 16)}),
                 v6Syn());
}
// A hop-by-hop header claiming 2048 bytes (hdr ext len 255) in a frame that
// holds 8 of them and a TCP SYN: a parser that trusted it would read past
// the frame (the verifier would refuse it) or take the SYN for options.
Bytes v6OverlongExtSyn() {
  Bytes hbh = test::ipv6OptionsHeader(IPPROTO_TCP, 8);
  hbh[1] = 255;
  return v6After(IPPROTO_HOPOPTS, hbh, v6Syn());
}
// An atomic fragment (offset 0, no more fragments; RFC 6946) around a SYN.
Bytes v6FragmentSyn() {
  return v6After(IPPROTO_FRAGMENT, test::ipv6FragmentHeader(IPPROTO_TCP, 0, false), v6Syn());
}
Bytes arpRequest() { return test::arpFrame(1); }
Bytes arpReply() { return test::arpFrame(2); }
Bytes vlanTagged() {  // 802.1Q VLAN 7 around an IPv4 SYN
  Bytes tag = {0x00, 0x07, 0x08, 0x00};  // TCI, inner ethertype
  return concat({test::ethHeader(ETH_P_8021Q), tag, test::ipv4Header(IPPROTO_TCP, 20),
                 test::tcpHeader(8080, kSyn)});
}
Bytes etherOnly() { return test::ethHeader(0x88b5); }  // 14 bytes, local experimental type
Bytes broadcastUdp() { return v4Udp(32, test::kBroadcastMac); }

// ---- the table ---------------------------------------------------------------

enum class Effect {
  kCounted,  // packets +1, bytes +len, last activity = this run's time, health unchanged
  kHealth,   // health packets +1, everything else unchanged
  kNone,     // no counter changes and no entry created (unregistered tap)
  kDropped,  // BOOTING: a client's new connection, dropped; no counter changes
};

enum class Setup {
  kNone,
  kUnregister,  // lo's entries deleted before the row (re-registered after)
  kFillRing,    // the ring filled with records of earlier wakes before the row
  kDrainRing,   // those records read before the row (the agent caught up)
};

struct Row {
  const char* name;
  Bytes (*frame)();
  uint32_t setState;  // S2Z_STATE_* written before the row; kKeep: as left
  uint32_t mask;      // s2z_cfg health mask for this row
  uint32_t mark;      // skb->mark
  Setup setup;
  // expected
  int verdict;
  Effect effect;
  uint32_t stateAfter;  // 0 with Effect::kNone: no entry
  int wakeEvents;
  int waitingPortAfter = -1;  // s2z_state waiting_port after the row; -1: not checked
};

constexpr uint32_t R = S2Z_STATE_RUNNING, S = S2Z_STATE_SLEEPING, W = S2Z_STATE_WAKING,
                   B = S2Z_STATE_BOOTING;
constexpr int OK = TC_ACT_OK;
constexpr Effect C = Effect::kCounted, H = Effect::kHealth, N = Effect::kNone, D = Effect::kDropped;
constexpr int STOLEN = 4;  // TC_ACT_STOLEN
constexpr Setup _ = Setup::kNone;

const Row kRows[] = {
    // Running: every kind of frame is activity and passes.
    {"v4 TCP SYN", v4Syn, R, kMark, 0, _, OK, C, R, 0},
    {"v4 TCP ACK+PSH with data", [] { return v4Tcp(kAck | kPsh, 100); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 TCP FIN+ACK", [] { return v4Tcp(kFin | kAck); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 TCP RST", [] { return v4Tcp(kRst); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 TCP RST+ACK", [] { return v4Tcp(kRst | kAck); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 UDP", [] { return v4Udp(); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 ICMP echo request", v4IcmpEcho, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 first fragment (MF, offset 0)", [] { return v4Fragment(0); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 middle fragment (MF, offset 1480)", [] { return v4Fragment(1); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 last fragment (offset 2960)", [] { return v4Fragment(2); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 with IP options (ihl 7)", v4WithOptions, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 full-size 1514-byte frame", v4FullSize, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v4 unknown IP protocol 253", v4UnknownProtocol, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 TCP SYN", [] { return v6Tcp(kSyn); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 TCP FIN+ACK", [] { return v6Tcp(kFin | kAck); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 UDP", v6Udp, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 neighbour solicitation", v6NeighbourSolicitation, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 first fragment", [] { return v6Fragment(true); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 later fragment", [] { return v6Fragment(false); }, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 hop-by-hop, then TCP SYN", v6HopByHopSyn, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 routing header, then TCP SYN", v6RoutingSyn, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 destination options, then UDP", v6DestOptsUdp, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 hop-by-hop + destination options, then TCP SYN", v6ChainSyn, kKeep, kMark, 0, _, OK, C, R, 0},
    {"v6 extension header claiming 2048 bytes in an 82-byte frame", v6OverlongExtSyn, kKeep, kMark, 0, _,
     OK, C, R, 0},
    {"v6 fragment header, then TCP SYN", v6FragmentSyn, kKeep, kMark, 0, _, OK, C, R, 0},
    {"ARP request", arpRequest, kKeep, kMark, 0, _, OK, C, R, 0},
    {"ARP reply", arpReply, kKeep, kMark, 0, _, OK, C, R, 0},
    {"802.1Q-tagged v4 SYN", vlanTagged, kKeep, kMark, 0, _, OK, C, R, 0},
    {"bare 14-byte Ethernet frame", etherOnly, kKeep, kMark, 0, _, OK, C, R, 0},
    {"broadcast v4 UDP", broadcastUdp, kKeep, kMark, 0, _, OK, C, R, 0},

    // Running: marked health checks (health_check_mark / the cgroup's socket mark).
    {"health: SYN, mark == mask", v4Syn, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: FIN+ACK marked", [] { return v4Tcp(kFin | kAck); }, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: RST marked", [] { return v4Tcp(kRst); }, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: final ACK, mask among other mark bits", [] { return v4Tcp(kAck); }, kKeep, kMark,
     kMark | 0x3, _, OK, H, R, 0},
    {"health: v6 SYN marked", [] { return v6Tcp(kSyn); }, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: v6 hop-by-hop SYN marked", v6HopByHopSyn, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: v6 routing-header SYN marked", v6RoutingSyn, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: v6 destination-options UDP marked", v6DestOptsUdp, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: v6 two-header chain SYN marked", v6ChainSyn, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: v6 overlong extension header marked", v6OverlongExtSyn, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: v6 fragment-header SYN marked", v6FragmentSyn, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: v4 fragment marked", [] { return v4Fragment(1); }, kKeep, kMark, kMark, _, OK, H, R, 0},
    {"health: multi-bit mask, all its bits", v4Syn, kKeep, kWideMark, kWideMark, _, OK, H, R, 0},
    {"health: multi-bit mask, mark 0xffffffff", v4Syn, kKeep, kWideMark, 0xffffffff, _, OK, H, R, 0},
    {"health: lowest bit as mask", v4Syn, kKeep, 0x1, 0x1, _, OK, H, R, 0},
    {"health: top bit as mask", v4Syn, kKeep, 0x80000000, 0x80000000, _, OK, H, R, 0},
    {"health: all-ones mask and mark", v4Syn, kKeep, 0xffffffff, 0xffffffff, _, OK, H, R, 0},
    {"not health: multi-bit mask, one bit missing", v4Syn, kKeep, kWideMark, kWideMark & ~0x2000u, _,
     OK, C, R, 0},
    {"not health: all-ones mask, one bit missing", v4Syn, kKeep, 0xffffffff, 0xfffffffe, _, OK, C, R, 0},
    {"not health: another mark bit only", v4Syn, kKeep, kMark, 0x2000, _, OK, C, R, 0},
    {"not health: mask 0 (filtering off), marked", v4Syn, kKeep, 0, kMark, _, OK, C, R, 0},

    // Asleep: health checks never wake; the first real frame wakes once.
    {"asleep: health SYN stays asleep", v4Syn, S, kMark, kMark, _, OK, H, S, 0},
    {"asleep: health FIN stays asleep", [] { return v4Tcp(kFin | kAck); }, kKeep, kMark, kMark, _, OK, H,
     S, 0},
    {"asleep: SYN wakes (one record)", v4Syn, kKeep, kMark, 0, _, OK, C, W, 1},
    {"waking: retransmitted SYN, no second record", v4Syn, kKeep, kMark, 0, _, OK, C, W, 0},
    {"waking: second retransmission, still none", v4Syn, kKeep, kMark, 0, _, OK, C, W, 0},
    {"waking: health packet", v4Syn, kKeep, kMark, kMark, _, OK, H, W, 0},
    {"running again (restored): SYN, no record", v4Syn, R, kMark, 0, _, OK, C, R, 0},
    {"asleep again: next sleep's first SYN wakes", v4Syn, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: ARP request wakes", arpRequest, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: v6 SYN wakes", [] { return v6Tcp(kSyn); }, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: v6 hop-by-hop SYN wakes", v6HopByHopSyn, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: v6 routing-header SYN wakes", v6RoutingSyn, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: v6 destination-options UDP wakes", v6DestOptsUdp, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: v6 two-header chain SYN wakes", v6ChainSyn, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: v6 overlong extension header wakes", v6OverlongExtSyn, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: v6 fragment-header SYN wakes", v6FragmentSyn, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: v6 hop-by-hop SYN marked stays asleep", v6HopByHopSyn, S, kMark, kMark, _, OK, H, S, 0},
    {"asleep: v6 routing-header SYN marked stays asleep", v6RoutingSyn, kKeep, kMark, kMark, _, OK, H, S,
     0},
    {"asleep: v6 destination-options UDP marked stays asleep", v6DestOptsUdp, kKeep, kMark, kMark, _, OK,
     H, S, 0},
    {"asleep: v6 two-header chain SYN marked stays asleep", v6ChainSyn, kKeep, kMark, kMark, _, OK, H, S,
     0},
    {"asleep: v6 overlong extension header marked stays asleep", v6OverlongExtSyn, kKeep, kMark, kMark, _,
     OK, H, S, 0},
    {"asleep: v6 fragment-header SYN marked stays asleep", v6FragmentSyn, kKeep, kMark, kMark, _, OK, H,
     S, 0},
    {"asleep: v4 later fragment wakes", [] { return v4Fragment(2); }, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: RST wakes", [] { return v4Tcp(kRst); }, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: FIN+ACK wakes", [] { return v4Tcp(kFin | kAck); }, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: UDP wakes", [] { return v4Udp(); }, S, kMark, 0, _, OK, C, W, 1},
    {"asleep: partial multi-bit mark wakes", v4Syn, S, kWideMark, kWideMark & 0xf000, _, OK, C, W, 1},
    {"asleep: mask 0, marked SYN wakes", v4Syn, S, 0, kMark, _, OK, C, W, 1},
    {"asleep, ring full: SYN counted, stays SLEEPING", v4Syn, S, kMark, 0, Setup::kFillRing, OK, C, S,
     0},
    {"asleep, ring read: retransmitted SYN wakes", v4Syn, kKeep, kMark, 0, Setup::kDrainRing, OK, C, W,
     1},

    // A tap that is not (or no longer) registered: passed, nothing recorded.
    {"unregistered: SYN", v4Syn, kKeep, kMark, 0, Setup::kUnregister, OK, N, 0, 0},
    {"unregistered: marked SYN", v4Syn, kKeep, kMark, kMark, Setup::kUnregister, OK, N, 0, 0},
    {"unregistered: ARP request", arpRequest, kKeep, kMark, 0, Setup::kUnregister, OK, N, 0, 0},

    // Booting (a cold boot replaced a lost guest, agent/boot_gate.h): a
    // client's new connection is dropped and its port noted (the first one
    // only); everything else passes: the probe, health checks, the guest's
    // own traffic, established flows.
    {"booting: v4 SYN dropped, port noted", v4Syn, B, kMark, 0, _, STOLEN, D, B, 0, 8080},
    {"booting: a SYN to another port keeps the first", [] { return concat({test::ethHeader(ETH_P_IP),
       test::ipv4Header(IPPROTO_TCP, 20), test::tcpHeader(9090, kSyn)}); }, kKeep, kMark, 0, _, STOLEN, D, B, 0, 8080},
    {"booting: the agent's probe SYN passes", v4Syn, kKeep, kMark, S2Z_BOOT_PROBE_MARK, _, OK, C, B, 0, 8080},
    {"booting: health-marked SYN passes (the responder answers those)", v4Syn, kKeep, kMark, kMark, _, OK,
     H, B, 0, 8080},
    {"booting: ACK of an established flow passes", [] { return v4Tcp(kAck | kPsh, 100); }, kKeep, kMark, 0,
     _, OK, C, B, 0, 8080},
    {"booting: SYN+ACK passes", [] { return v4Tcp(kSyn | kAck); }, kKeep, kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: UDP passes", [] { return v4Udp(); }, kKeep, kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: v4 later fragment passes", [] { return v4Fragment(2); }, kKeep, kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: v6 SYN passes (the tap carries no IPv6 to the guest)", [] { return v6Tcp(kSyn); }, kKeep,
     kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: v6 hop-by-hop SYN passes", v6HopByHopSyn, kKeep, kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: v6 routing-header SYN passes", v6RoutingSyn, kKeep, kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: v6 destination-options UDP passes", v6DestOptsUdp, kKeep, kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: v6 two-header chain SYN passes", v6ChainSyn, kKeep, kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: v6 overlong extension header passes", v6OverlongExtSyn, kKeep, kMark, 0, _, OK, C, B, 0,
     8080},
    {"booting: v6 fragment-header SYN passes", v6FragmentSyn, kKeep, kMark, 0, _, OK, C, B, 0, 8080},
    {"booting: v6 hop-by-hop SYN marked: a health packet", v6HopByHopSyn, kKeep, kMark, kMark, _, OK, H, B,
     0, 8080},
    {"booting: SYN with IP options dropped", v4WithOptions, kKeep, kMark, 0, _, STOLEN, D, B, 0, 8080},
    {"running again: the same SYN passes and counts; the port is cleared", v4Syn, R, kMark, 0, _, OK, C, R,
     0, 0},
};

// ---- the runner ---------------------------------------------------------------

struct RingDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};

int collect(void* ctx, void* data, size_t size) {
  auto* seen = static_cast<std::vector<s2z_wake_event>*>(ctx);
  REQUIRE(size == sizeof(s2z_wake_event));
  seen->push_back(*static_cast<s2z_wake_event*>(data));
  return 0;
}

// Runs `frame` once with skb->ifindex = lo and skb->mark; returns the verdict.
int runFrame(int progFd, const Bytes& frame, uint32_t mark) {
  __sk_buff ctx{};
  ctx.ifindex = kLo;
  ctx.mark = mark;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = 1);
  REQUIRE(bpf_prog_test_run_opts(progFd, &opts) == 0);
  return static_cast<int>(opts.retval);
}

class Fixture {
 public:
  Fixture() {
    auto loaded = TcIdleProgram::load({});  // private, unpinned maps
    REQUIRE_MESSAGE(loaded.ok(), s2z::tests::errText(loaded));
    prog_ = std::move(*loaded);
    ring_.reset(ring_buffer__new(prog_->wakeRingFd(), collect, &events_, nullptr));
    REQUIRE(ring_);
    registerTap(kLo, S2Z_STATE_RUNNING);
    registerTap(kOtherTap, S2Z_STATE_SLEEPING);
  }

  TcIdleProgram& prog() { return *prog_; }

  void registerTap(uint32_t ifindex, uint32_t state) {
    s2z_state_value st{state, 0};
    s2z_counters_value zero{};
    REQUIRE(bpf_map_update_elem(prog_->stateMapFd(), &ifindex, &st, BPF_ANY) == 0);
    REQUIRE(bpf_map_update_elem(prog_->countersMapFd(), &ifindex, &zero, BPF_ANY) == 0);
  }
  void unregisterLo() {
    uint32_t lo = kLo;
    REQUIRE(bpf_map_delete_elem(prog_->stateMapFd(), &lo) == 0);
    REQUIRE(bpf_map_delete_elem(prog_->countersMapFd(), &lo) == 0);
  }
  void setState(uint32_t state) {
    uint32_t lo = kLo;
    s2z_state_value st{state, 0};
    REQUIRE(bpf_map_update_elem(prog_->stateMapFd(), &lo, &st, BPF_EXIST) == 0);
  }
  uint32_t waitingPort(uint32_t ifindex) {
    s2z_state_value st{};
    if (bpf_map_lookup_elem(prog_->stateMapFd(), &ifindex, &st) != 0) return ~0u;
    return st.waiting_port;
  }
  bool state(uint32_t ifindex, uint32_t* out) {
    s2z_state_value st{};
    if (bpf_map_lookup_elem(prog_->stateMapFd(), &ifindex, &st) != 0) return false;
    *out = st.state;
    return true;
  }
  bool counters(uint32_t ifindex, s2z_counters_value* out) {
    return bpf_map_lookup_elem(prog_->countersMapFd(), &ifindex, out) == 0;
  }
  // Records that arrived since the last call.
  std::vector<s2z_wake_event> drainEvents() {
    events_.clear();
    REQUIRE(ring_buffer__consume(ring_.get()) >= 0);
    return events_;
  }
  // Wakes lo over and over without reading the ring until a wake finds no
  // room: the state then stays SLEEPING. Returns the records written.
  int fillRing() {
    const Bytes frame = v4Syn();
    for (int written = 0; written < 100000; ++written) {
      setState(S2Z_STATE_SLEEPING);
      runFrame(prog_->programFd(), frame, 0);
      uint32_t st = 0;
      REQUIRE(state(kLo, &st));
      if (st == S2Z_STATE_SLEEPING) return written;
    }
    FAIL("the wake ring never filled");
    return 0;
  }

 private:
  std::unique_ptr<TcIdleProgram> prog_;
  std::unique_ptr<ring_buffer, RingDeleter> ring_;
  std::vector<s2z_wake_event> events_;
};

}  // namespace

TEST_CASE("tc_idle: fixture table over every kind of frame toward a VM (BPF_PROG_TEST_RUN)") {
  Fixture fx;
  TcIdleProgram& prog = fx.prog();
  s2z_counters_value otherBefore{};
  REQUIRE(fx.counters(kOtherTap, &otherBefore));
  int rows = 0;

  for (const Row& row : kRows) {
    ++rows;
    const std::string name = row.name;
    CAPTURE(name);
    const Bytes frame = row.frame();
    REQUIRE(prog.setHealthMask(row.mask).ok());
    if (row.setState != kKeep) fx.setState(row.setState);
    int filled = 0;  // records the fill left in the ring
    switch (row.setup) {
      case Setup::kNone:
        break;
      case Setup::kUnregister:
        fx.unregisterLo();
        break;
      case Setup::kFillRing:
        filled = fx.fillRing();
        CHECK(filled > 1000);  // 64 KiB of 24-byte records
        fx.setState(row.setState);
        break;
      case Setup::kDrainRing:
        fx.drainEvents();
        break;
    }
    s2z_counters_value before{};
    const bool registered = fx.counters(kLo, &before);
    REQUIRE(registered == (row.setup != Setup::kUnregister));
    // Events from the fill stay in the ring until the next drain.
    if (row.setup != Setup::kFillRing) REQUIRE(fx.drainEvents().empty());

    CHECK(runFrame(prog.programFd(), frame, row.mark) == row.verdict);

    s2z_counters_value after{};
    uint32_t stateAfter = 0;
    if (row.effect == Effect::kNone) {
      CHECK_FALSE(fx.counters(kLo, &after));  // no entry created for an unknown tap
      CHECK_FALSE(fx.state(kLo, &stateAfter));
      fx.registerTap(kLo, S2Z_STATE_RUNNING);
    } else {
      REQUIRE(fx.counters(kLo, &after));
      REQUIRE(fx.state(kLo, &stateAfter));
      CHECK(stateAfter == row.stateAfter);
      const bool counted = row.effect == Effect::kCounted;
      const bool health = row.effect == Effect::kHealth;
      CHECK(after.packets - before.packets == (counted ? 1u : 0u));
      CHECK(after.bytes - before.bytes == (counted ? frame.size() : 0u));
      CHECK(after.health_packets - before.health_packets == (health ? 1u : 0u));
      if (counted) {
        CHECK(after.last_activity_ns > before.last_activity_ns);
      } else {
        CHECK(after.last_activity_ns == before.last_activity_ns);
      }
    }

    if (row.waitingPortAfter >= 0) CHECK(fx.waitingPort(kLo) == static_cast<uint32_t>(row.waitingPortAfter));

    std::vector<s2z_wake_event> events = fx.drainEvents();
    REQUIRE(events.size() >= static_cast<size_t>(filled));
    events.erase(events.begin(), events.begin() + filled);  // the fill's own records
    CHECK(events.size() == static_cast<size_t>(row.wakeEvents));
    for (const auto& ev : events) {
      CHECK(ev.ifindex == kLo);
      CHECK(ev.pad == 0);
      CHECK(ev.timestamp_ns == after.last_activity_ns);  // the waking frame's own time
    }
    // Nothing leaks onto another instance.
    s2z_counters_value other{};
    REQUIRE(fx.counters(kOtherTap, &other));
    CHECK(other.packets == otherBefore.packets);
    CHECK(other.health_packets == otherBefore.health_packets);
    uint32_t otherState = 0;
    REQUIRE(fx.state(kOtherTap, &otherState));
    CHECK(otherState == S2Z_STATE_SLEEPING);
  }
  CHECK(rows >= 40);
  MESSAGE(rows << " frames run through s2z_tap_egress");
}

}  // namespace s2z::bpf
