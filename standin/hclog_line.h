// Interprets one plugin stderr line the way the Nomad client's go-plugin log
// forwarder does (docs/nomad-plugin-protocol.md §1.6), and flags lines that
// would be mis-logged or would crash the client.
#pragma once

#include <string>
#include <vector>

namespace s2z::standin {

struct HclogLine {
  std::string raw;
  bool isJson = false;      // a JSON object (what the driver's hclog sink writes)
  std::string level;        // lower-case hclog level, "debug" for fallbacks
  std::string message;
  std::string timestamp;
  // Reasons this line breaks the hclog contract: non-string @level/@message/
  // @timestamp (a panic in the client), unknown level, timestamp not in
  // 2006-01-02T15:04:05.000000Z07:00 form. Empty when the line is fine.
  std::vector<std::string> violations;
};

// Never fails: problems are reported in `violations`.
HclogLine parseHclogLine(const std::string& line);

}  // namespace s2z::standin
