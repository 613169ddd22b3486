// libbpf returns negative errno values (or sets errno and returns a negative
// value, depending on the call); this turns either into our Error.
#pragma once

#include <string>

#include "common/result.h"

namespace s2z::bpf {

inline Error libbpfError(const std::string& what, int err) {
  return systemError(what, err < 0 ? -err : err);
}

}  // namespace s2z::bpf
