#include "common/failpoint.h"

namespace s2z {

// Weak: the test plugin's failpoint_trigger.cpp replaces it at link time.
__attribute__((weak)) void failpoint(const char*) {}

}  // namespace s2z
