// Loads the initramfs's kernel modules. The build (scripts/build-agent-guest.sh)
// resolved dependencies from modules.dep and wrote the names in load order to
// /etc/modules.order; the files are /lib/modules/<name>.ko, decompressed.
#pragma once

#include <string>

#include "common/result.h"

namespace s2z::guest {

// finit_module() each listed module in order; EEXIST (already loaded or built
// in) is fine. Fails on the first module the kernel refuses, naming it.
Result<void> loadModules(const std::string& orderFile = "/etc/modules.order",
                         const std::string& dir = "/lib/modules");

}  // namespace s2z::guest
