// Crafted frames for BPF_PROG_TEST_RUN: Ethernet + IPv4 + TCP, as a tap
// egress classifier sees them. Checksums are left zero (nothing checks them).
#pragma once

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace s2z::bpf::test {

inline std::vector<uint8_t> tcpSynFrame(uint32_t srcBe, uint32_t dstBe, uint16_t dport) {
  std::vector<uint8_t> f(sizeof(ethhdr) + sizeof(iphdr) + sizeof(tcphdr), 0);
  auto* eth = reinterpret_cast<ethhdr*>(f.data());
  const uint8_t vmMac[ETH_ALEN] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  const uint8_t hostMac[ETH_ALEN] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
  std::memcpy(eth->h_dest, vmMac, ETH_ALEN);
  std::memcpy(eth->h_source, hostMac, ETH_ALEN);
  eth->h_proto = htons(ETH_P_IP);
  auto* ip = reinterpret_cast<iphdr*>(f.data() + sizeof(ethhdr));
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_TCP;
  ip->tot_len = htons(sizeof(iphdr) + sizeof(tcphdr));
  ip->saddr = srcBe;
  ip->daddr = dstBe;
  auto* tcp = reinterpret_cast<tcphdr*>(f.data() + sizeof(ethhdr) + sizeof(iphdr));
  tcp->source = htons(40000);
  tcp->dest = htons(dport);
  tcp->seq = htonl(1);
  tcp->doff = 5;
  tcp->syn = 1;
  tcp->window = htons(64240);
  return f;
}

inline uint32_t ipv4(const char* dotted) {
  in_addr a{};
  inet_pton(AF_INET, dotted, &a);
  return a.s_addr;
}

}  // namespace s2z::bpf::test
