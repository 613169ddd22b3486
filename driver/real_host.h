// The Host backed by the real agent and VMM probes. Only the executable
// links it; tests use fakes of Host.
#pragma once

#include <memory>

#include "driver/host.h"

namespace s2z::driver {

std::unique_ptr<Host> makeRealHost();

}  // namespace s2z::driver
