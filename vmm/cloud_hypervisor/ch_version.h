// Cloud Hypervisor versions and what each one can do. The backend asks these
// questions instead of comparing version numbers inline, so every version
// threshold lives (with its reason) in one place.
#pragma once

#include <compare>
#include <string>
#include <string_view>

#include "common/result.h"

namespace s2z::vmm::ch {

struct ChVersion {
  unsigned major = 0;
  unsigned minor = 0;
  unsigned patch = 0;

  auto operator<=>(const ChVersion&) const = default;
  std::string str() const;  // "v45.0" (patch only when non-zero: "v41.0.2")
};

// Parses the first "vX.Y[.Z]" (or "X.Y[.Z]") token in text, e.g. the output of
// `cloud-hypervisor --version` ("cloud-hypervisor v45.0.0-dirty") or the
// "version" field of vmm.ping. kInvalidArgument when none is found.
Result<ChVersion> parseChVersion(std::string_view text);

// What a given version supports, per the release notes (see API_FACTS.md).
struct ChCapabilities {
  bool netFdsOnRestore = false;    // v40: vm.restore takes net_fds + SCM_RIGHTS
};
ChCapabilities capabilitiesFor(const ChVersion& version);

// The oldest version the backend accepts: a VM whose NIC came from a tap fd can
// only be restored when the fd can be handed over again.
inline constexpr ChVersion kMinimumVersion{40, 0, 0};

// Ok when version >= kMinimumVersion, else kFailedPrecondition saying why.
Result<void> checkSupported(const ChVersion& version);

}  // namespace s2z::vmm::ch
