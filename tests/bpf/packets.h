// Crafted frames for BPF_PROG_TEST_RUN, as a tap egress classifier sees
// them: Ethernet + IPv4/IPv6 + TCP/UDP/ICMP, IPv6 extension headers,
// fragments, ARP, VLAN. Plain structs and byte arrays; checksums are left
// zero (nothing checks them).
#pragma once

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace s2z::bpf::test {

inline uint32_t ipv4(const char* dotted) {
  in_addr a{};
  inet_pton(AF_INET, dotted, &a);
  return a.s_addr;
}

// Building blocks for other frames (all fields in network order where the
// wire has them so). Each returns the bytes of one header or a whole frame.
using Bytes = std::vector<uint8_t>;

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

template <typename T>
Bytes bytesOf(const T& header) {
  const auto* b = reinterpret_cast<const uint8_t*>(&header);
  return Bytes(b, b + sizeof(T));
}

constexpr uint8_t kVmMac[ETH_ALEN] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr uint8_t kHostMac[ETH_ALEN] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
constexpr uint8_t kBroadcastMac[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline Bytes ethHeader(uint16_t etherType, const uint8_t* dst = kVmMac) {
  ethhdr eth{};
  std::memcpy(eth.h_dest, dst, ETH_ALEN);
  std::memcpy(eth.h_source, kHostMac, ETH_ALEN);
  eth.h_proto = htons(etherType);
  return bytesOf(eth);
}

// IPv4 header for `payloadLen` bytes of `protocol`; fragOff in 8-byte units;
// optionWords 32-bit words of NOP options (ihl = 5 + optionWords).
inline Bytes ipv4Header(uint8_t protocol, size_t payloadLen, bool moreFragments = false,
                        uint16_t fragOff = 0, unsigned optionWords = 0) {
  iphdr ip{};
  ip.version = 4;
  ip.ihl = static_cast<unsigned>(5 + optionWords);
  ip.ttl = 64;
  ip.protocol = protocol;
  ip.id = htons(0x1234);
  ip.tot_len = htons(static_cast<uint16_t>(ip.ihl * 4 + payloadLen));
  ip.frag_off = htons(static_cast<uint16_t>((moreFragments ? 0x2000 : 0) | fragOff));
  ip.saddr = ipv4("10.89.0.1");
  ip.daddr = ipv4("10.89.0.2");
  Bytes out = bytesOf(ip);
  out.insert(out.end(), optionWords * 4, 0x01);  // NOP
  return out;
}

// IPv6 header (fixed part) for `payloadLen` bytes after it; nextHeader is
// the first extension header or the upper-layer protocol.
inline Bytes ipv6Header(uint8_t nextHeader, size_t payloadLen) {
  Bytes h(40, 0);
  h[0] = 0x60;  // version 6
  h[4] = static_cast<uint8_t>(payloadLen >> 8);
  h[5] = static_cast<uint8_t>(payloadLen);
  h[6] = nextHeader;
  h[7] = 64;  // hop limit
  const uint8_t src[16] = {0xfd, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const uint8_t dst[16] = {0xfd, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  std::memcpy(&h[8], src, 16);
  std::memcpy(&h[24], dst, 16);
  return h;
}

// IPv6 fragment extension header: offset in 8-byte units.
inline Bytes ipv6FragmentHeader(uint8_t nextHeader, uint16_t offset, bool more) {
  Bytes h(8, 0);
  h[0] = nextHeader;
  uint16_t offFlags = static_cast<uint16_t>((offset << 3) | (more ? 1 : 0));
  h[2] = static_cast<uint8_t>(offFlags >> 8);
  h[3] = static_cast<uint8_t>(offFlags);
  h[4] = 0xab;  // identification
  h[7] = 0x01;
  return h;
}

// IPv6 hop-by-hop or destination options header (RFC 8200 4.3, 4.6) of
// `length` bytes (a multiple of 8, at least 8): next header, hdr ext len in
// 8-byte units after the first 8, then padding options (PadN, or Pad1 for a
// single byte) to the end.
inline Bytes ipv6OptionsHeader(uint8_t nextHeader, size_t length) {
  Bytes h(length, 0);
  h[0] = nextHeader;
  h[1] = static_cast<uint8_t>(length / 8 - 1);
  const size_t pad = length - 2;
  if (pad >= 2) {
    h[2] = 1;  // PadN
    h[3] = static_cast<uint8_t>(pad - 2);
  }  // else a single Pad1: the zero byte already there
  return h;
}

// IPv6 routing header, type 2 (RFC 6275 6.4): one address, segments left 1,
// 24 bytes (hdr ext len 2).
inline Bytes ipv6RoutingHeader(uint8_t nextHeader) {
  Bytes h(24, 0);
  h[0] = nextHeader;
  h[1] = 2;  // (24 - 8) / 8
  h[2] = 2;  // routing type
  h[3] = 1;  // segments left
  const uint8_t home[16] = {0xfd, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
  std::memcpy(&h[8], home, 16);
  return h;
}

// TCP header with the given flags (TCP_FLAG_* style bits: FIN 0x01, SYN
// 0x02, RST 0x04, PSH 0x08, ACK 0x10), client port 40000.
inline Bytes tcpHeader(uint16_t dport, uint8_t flags, uint32_t seq = 1) {
  tcphdr tcp{};
  tcp.source = htons(40000);
  tcp.dest = htons(dport);
  tcp.seq = htonl(seq);
  tcp.doff = 5;
  tcp.fin = (flags & 0x01) != 0;
  tcp.syn = (flags & 0x02) != 0;
  tcp.rst = (flags & 0x04) != 0;
  tcp.psh = (flags & 0x08) != 0;
  tcp.ack = (flags & 0x10) != 0;
  tcp.window = htons(64240);
  return bytesOf(tcp);
}

// A TCP SYN from srcBe to dstBe:dport, host MAC to VM MAC. Built from the
// headers above: a vector's bytes at offset 14 are no place for an iphdr
// (UBSan: misaligned member access).
inline Bytes tcpSynFrame(uint32_t srcBe, uint32_t dstBe, uint16_t dport) {
  Bytes ip = ipv4Header(IPPROTO_TCP, sizeof(tcphdr));
  std::memcpy(&ip[offsetof(iphdr, saddr)], &srcBe, sizeof srcBe);
  std::memcpy(&ip[offsetof(iphdr, daddr)], &dstBe, sizeof dstBe);
  return concat({ethHeader(ETH_P_IP), ip, tcpHeader(dport, 0x02)});
}

inline Bytes udpHeader(uint16_t sport, uint16_t dport, size_t payloadLen) {
  Bytes h(8, 0);
  h[0] = static_cast<uint8_t>(sport >> 8);
  h[1] = static_cast<uint8_t>(sport);
  h[2] = static_cast<uint8_t>(dport >> 8);
  h[3] = static_cast<uint8_t>(dport);
  size_t len = 8 + payloadLen;
  h[4] = static_cast<uint8_t>(len >> 8);
  h[5] = static_cast<uint8_t>(len);
  return h;
}

// ARP for IPv4 over Ethernet: op 1 request (who has the VM), 2 reply.
inline Bytes arpFrame(uint16_t op) {
  Bytes a = {0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, static_cast<uint8_t>(op)};
  a.insert(a.end(), kHostMac, kHostMac + ETH_ALEN);
  uint32_t host = ipv4("10.89.0.1"), vm = ipv4("10.89.0.2");
  const auto* h = reinterpret_cast<const uint8_t*>(&host);
  const auto* v = reinterpret_cast<const uint8_t*>(&vm);
  a.insert(a.end(), h, h + 4);
  if (op == 1) {
    a.insert(a.end(), ETH_ALEN, 0);
  } else {
    a.insert(a.end(), kVmMac, kVmMac + ETH_ALEN);
  }
  a.insert(a.end(), v, v + 4);
  return concat({ethHeader(ETH_P_ARP, op == 1 ? kBroadcastMac : kVmMac), a});
}

}  // namespace s2z::bpf::test
