#include "vmm/cloud_hypervisor/ch_version.h"

#include <cctype>
#include <optional>

namespace s2z::vmm::ch {
namespace {

constexpr ChVersion kNetFdsOnRestore{40, 0, 0};

// Reads digits at text[pos...]; advances pos. nullopt when no digit is there.
std::optional<unsigned> readNumber(std::string_view text, size_t& pos) {
  if (pos >= text.size() || !std::isdigit(static_cast<unsigned char>(text[pos]))) {
    return std::nullopt;
  }
  unsigned value = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
    value = value * 10 + static_cast<unsigned>(text[pos] - '0');
    if (value > 1000000) return std::nullopt;  // not a version number
    ++pos;
  }
  return value;
}

// Tries to parse "X.Y[.Z]" starting at pos.
std::optional<ChVersion> parseAt(std::string_view text, size_t pos) {
  ChVersion v;
  auto major = readNumber(text, pos);
  if (!major || pos >= text.size() || text[pos] != '.') return std::nullopt;
  ++pos;
  auto minor = readNumber(text, pos);
  if (!minor) return std::nullopt;
  v.major = *major;
  v.minor = *minor;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    if (auto patch = readNumber(text, pos)) v.patch = *patch;
  }
  return v;
}

}  // namespace

std::string ChVersion::str() const {
  std::string s = "v" + std::to_string(major) + "." + std::to_string(minor);
  if (patch != 0) s += "." + std::to_string(patch);
  return s;
}

Result<ChVersion> parseChVersion(std::string_view text) {
  // A version token starts at a word boundary, optionally with a 'v' prefix:
  // this skips digits inside the program name or a build hash.
  for (size_t i = 0; i < text.size(); ++i) {
    bool boundary = i == 0 || std::isspace(static_cast<unsigned char>(text[i - 1]));
    if (!boundary) continue;
    size_t start = (text[i] == 'v' || text[i] == 'V') ? i + 1 : i;
    if (auto v = parseAt(text, start)) return *v;
  }
  return makeError(ErrorCode::kInvalidArgument,
                   "no cloud-hypervisor version found in \"" + std::string(text) + "\"");
}

ChCapabilities capabilitiesFor(const ChVersion& version) {
  ChCapabilities caps;
  caps.netFdsOnRestore = version >= kNetFdsOnRestore;
  return caps;
}

Result<void> checkSupported(const ChVersion& version) {
  if (version >= kMinimumVersion) return okResult();
  return makeError(ErrorCode::kFailedPrecondition,
                   "cloud-hypervisor " + version.str() + " is too old: v" +
                       std::to_string(kMinimumVersion.major) +
                       " or newer is needed to pass tap fds on restore");
}

}  // namespace s2z::vmm::ch
