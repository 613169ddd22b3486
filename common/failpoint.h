// Failpoints: named places on the sleep, wake and recovery paths where a
// test build of the plugin can be made to die at once (SIGKILL), so that the
// reliability suite can prove a new plugin recovers from a crash at exactly
// that point (tests/reliability/failpoint_test.cpp).
//
// The hooks cost one call to an empty function in the plugin users install:
// this library's definition does nothing and reads nothing. Only the test
// plugin s2z-kata-failpoints links failpoint_trigger.cpp, whose strong
// definition replaces it and reads S2Z_FAILPOINT=<name> from its environment.
#pragma once

namespace s2z {

void failpoint(const char* name);

}  // namespace s2z
