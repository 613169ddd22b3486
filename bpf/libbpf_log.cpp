#include "bpf/libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

namespace s2z::bpf {
namespace {

int printToSpdlog(enum libbpf_print_level level, const char* format, va_list args) {
  const auto spdLevel =
      level == LIBBPF_DEBUG ? spdlog::level::trace : spdlog::level::debug;
  if (!spdlog::should_log(spdLevel)) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof(buf), format, args);
  if (n < 0) return n;
  std::string line(buf);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  spdlog::log(spdLevel, "libbpf: {}", line);
  return n;
}

}  // namespace

void routeLibbpfLogs() {
  // libbpf's print hook is process-wide by design; set it once.
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(printToSpdlog); });
}

}  // namespace s2z::bpf
