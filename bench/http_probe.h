// The benchmark's client: one HTTP GET timed from the moment the SYN is sent
// to the last byte of the response, plus the netns's TCP retransmit counters.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/result.h"

namespace s2z::bench {

struct HttpTiming {
  int status = 0;                 // HTTP status; 0 if no complete response
  double ms = 0;                  // SYN sent -> full response (Connection: close, EOF)
  std::string error;              // why status is 0
  int errnum = 0;                 // the connect/recv errno behind error, if any
  std::string body;               // after the header
};

// GET http://address:port/path with Connection: close from the calling
// thread's netns. onSynSent runs right after the non-blocking connect() put
// the SYN on the wire (e.g. to trigger a restore), before waiting for it.
HttpTiming timedGet(const std::string& address, uint16_t port, const std::string& path,
                    std::chrono::milliseconds timeout,
                    const std::function<void()>& onSynSent = {});

// Polls GET `path` until it returns 200 or the deadline passes (each try ≤ 1 s).
bool waitForHttp(const std::string& address, uint16_t port, std::chrono::milliseconds timeout,
                 const std::string& path = "/healthz");

struct TcpRetransmits {
  uint64_t segments = 0;  // Tcp RetransSegs (/proc/net/snmp)
  uint64_t syn = 0;       // TcpExt TCPSynRetrans (/proc/net/netstat)
};
// Reads both counters of the calling thread's netns.
Result<TcpRetransmits> readRetransmits();

}  // namespace s2z::bench
