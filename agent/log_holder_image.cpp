#include "agent/log_holder_image.h"

// S2Z_LOG_HOLDER_FILE: the built s2z-log-holder (agent/CMakeLists.txt), whose
// bytes the assembler includes verbatim.
asm(".section .rodata\n"
    ".balign 16\n"
    "s2z_log_holder_image_begin:\n"
    ".incbin \"" S2Z_LOG_HOLDER_FILE "\"\n"
    "s2z_log_holder_image_end:\n"
    ".previous\n");

extern "C" const char s2z_log_holder_image_begin[];
extern "C" const char s2z_log_holder_image_end[];

namespace s2z::agent {

std::string_view logHolderImage() {
  return {s2z_log_holder_image_begin,
          static_cast<size_t>(s2z_log_holder_image_end - s2z_log_holder_image_begin)};
}

}  // namespace s2z::agent
