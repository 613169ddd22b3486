#include "standin/handshake.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace s2z::standin {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// strconv.Atoi: optional sign and decimal digits only.
bool parseInt(const std::string& s, int* out) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j) {
    if (!std::isdigit(static_cast<unsigned char>(s[j]))) return false;
  }
  *out = std::atoi(s.c_str());
  return true;
}

Error bad(const std::string& why) { return makeError(ErrorCode::kInvalidArgument, why); }

}  // namespace

Result<Handshake> parseHandshake(const std::string& rawLine, const std::vector<int>& accepted) {
  std::string line = trim(rawLine);
  std::vector<std::string> parts;
  size_t start = 0;
  // SplitN(line, "|", 6): the sixth field keeps any further bars.
  while (parts.size() < 5) {
    size_t bar = line.find('|', start);
    if (bar == std::string::npos) break;
    parts.push_back(line.substr(start, bar - start));
    start = bar + 1;
  }
  parts.push_back(line.substr(start));
  if (parts.size() < 4) {
    return bad("Unrecognized remote plugin message: " + line +
               "\nThis usually means the plugin was not compiled for this architecture, the "
               "plugin is missing dynamic-link libraries necessary to run, the plugin is not "
               "executable by this process due to file permissions, or the plugin failed to "
               "negotiate the initial go-plugin protocol handshake");
  }
  Handshake h;
  if (!parseInt(parts[0], &h.coreVersion)) return bad("Error parsing core protocol version: " + parts[0]);
  if (h.coreVersion != 1) {
    return bad("Incompatible core API version with plugin. Plugin version: " + parts[0] +
               ", Core version: 1");
  }
  if (!parseInt(parts[1], &h.appVersion)) return bad("Error parsing protocol version: " + parts[1]);
  if (std::find(accepted.begin(), accepted.end(), h.appVersion) == accepted.end()) {
    return bad("Incompatible API version with plugin. Plugin version: " + parts[1]);
  }
  h.network = parts[2];
  if (h.network != "unix" && h.network != "tcp") return bad("Unknown address type: " + parts[3]);
  h.address = parts[3];
  if (h.address.empty()) return bad("empty plugin address");
  h.protocol = parts.size() >= 5 ? parts[4] : "netrpc";
  if (h.protocol != "grpc") {
    return bad("Unsupported plugin protocol \"" + h.protocol + "\". Supported: [grpc]");
  }
  if (parts.size() >= 6 && parts[5].size() > 50) {
    // Nomad's client has no TLS config; a certificate here would crash it.
    return bad("plugin sent a server certificate but the client did not enable AutoMTLS");
  }
  return h;
}

}  // namespace s2z::standin
