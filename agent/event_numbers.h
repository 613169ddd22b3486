// How numbers are written in task events (messages and annotations, which
// Nomad shows as they are): one decimal, in the unit the name says.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace s2z::agent {

inline std::string millis(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", ms);
  return buf;
}

inline std::string mebibytes(uint64_t bytes) {
  return millis(static_cast<double>(bytes) / (1024.0 * 1024.0));
}

}  // namespace s2z::agent
