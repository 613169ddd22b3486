// The log holder program (log_holder_program.c, linked statically), embedded
// in the plugin so that the plugin stays the one file users install.
#pragma once

#include <cstddef>
#include <string_view>

namespace s2z::agent {

// The executable's bytes.
std::string_view logHolderImage();

}  // namespace s2z::agent
