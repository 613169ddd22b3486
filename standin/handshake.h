// The go-plugin handshake line a plugin prints first on stdout, validated the
// way the Nomad client (go-plugin v1.4.10–v1.8) validates it
// (docs/nomad-plugin-protocol.md §1.3).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::standin {

inline constexpr char kMagicCookieKey[] = "NOMAD_PLUGIN_MAGIC_COOKIE";
inline constexpr char kMagicCookieValue[] =
    "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";

struct Handshake {
  int coreVersion = 0;
  int appVersion = 0;
  std::string network;   // "unix" or "tcp"
  std::string address;   // socket path or host:port
  std::string protocol;  // always "grpc" once accepted
};

// Parses and checks one handshake line: trimmed, split on '|' into at most six
// fields; core version 1; app version in `acceptedVersions`; network unix or
// tcp; protocol grpc (a missing field means netrpc, which Nomad rejects); no
// server certificate (field 6 longer than 50 characters). Fails with
// kInvalidArgument carrying go-plugin's wording.
Result<Handshake> parseHandshake(const std::string& line, const std::vector<int>& acceptedVersions);

}  // namespace s2z::standin
