// Shared by the fuzz targets: a failed property is a crash libFuzzer reports
// (and saves the input for), with the reason printed first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/result.h"

#define FUZZ_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                             \
      std::fprintf(stderr, "\n");                                                    \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

namespace s2z::fuzz {

inline std::string_view bytesOf(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Bad input must be refused as the caller's mistake, with a message: any
// other code (kInternal, ...) or an empty message is a decoder bug.
template <typename T>
void expectOkOrInvalid(const Result<T>& r, const char* what) {
  if (r.ok()) return;
  FUZZ_CHECK(r.error().code == ErrorCode::kInvalidArgument, "%s: code %s: %s", what,
             errorCodeName(r.error().code), r.error().message.c_str());
  FUZZ_CHECK(!r.error().message.empty(), "%s: empty error message", what);
}

// Split points for feeding a stream in pieces, derived from the input itself
// (deterministic, so a crash reproduces): piece sizes 1..64.
class Splitter {
 public:
  explicit Splitter(std::string_view in) {
    for (unsigned char c : in) state_ = state_ * 1099511628211ull ^ c;
  }
  size_t next() {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return 1 + (state_ >> 33) % 64;
  }

 private:
  uint64_t state_ = 1469598103934665603ull;
};

}  // namespace s2z::fuzz
