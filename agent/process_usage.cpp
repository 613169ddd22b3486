#include "agent/process_usage.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace s2z::agent {

Result<ProcessTimes> readProcessTimes(pid_t pid) {
  std::string base = "/proc/" + std::to_string(pid);
  std::ifstream stat(base + "/stat");
  std::string line;
  if (!stat || !std::getline(stat, line)) {
    return makeError(ErrorCode::kNotFound, "process " + std::to_string(pid) + " is gone");
  }
  // The command name (field 2) may contain spaces: parse after its ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) {
    return makeError(ErrorCode::kInternal, "unexpected " + base + "/stat: " + line);
  }
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  ProcessTimes t;
  // Fields from 3 (state) on; utime and stime are 14 and 15.
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14) t.userTicks = std::stoull(field);
    if (n == 15) t.systemTicks = std::stoull(field);
  }
  std::ifstream status(base + "/status");
  auto kib = [](const std::string& rest) {
    std::istringstream kb(rest);
    uint64_t value = 0;
    kb >> value;
    return value * 1024;
  };
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) t.rssBytes = kib(line.substr(6));
    if (line.rfind("RssAnon:", 0) == 0) t.anonBytes = kib(line.substr(8));
  }
  return t;
}

ResourceUsage UsageSampler::sample(pid_t pid) {
  ResourceUsage usage;
  if (pid <= 0) return usage;
  auto times = readProcessTimes(pid);
  if (!times.ok()) return usage;
  auto now = std::chrono::steady_clock::now();
  usage.measured = true;
  usage.cpuTicksTotal = times->userTicks + times->systemTicks;
  usage.rssBytes = times->rssBytes;
  // A reused pid shows smaller totals: start over rather than underflow.
  bool sameProcess = pid == pid_ && times->userTicks >= last_.userTicks &&
                     times->systemTicks >= last_.systemTicks;
  if (sameProcess) {
    double seconds = std::chrono::duration<double>(now - lastAt_).count();
    static const double kTicksPerSecond = static_cast<double>(::sysconf(_SC_CLK_TCK));
    if (seconds > 0) {
      double scale = 100.0 / (seconds * kTicksPerSecond);
      usage.userPercent = static_cast<double>(times->userTicks - last_.userTicks) * scale;
      usage.systemPercent = static_cast<double>(times->systemTicks - last_.systemTicks) * scale;
      usage.cpuPercent = usage.userPercent + usage.systemPercent;
    }
  }
  pid_ = pid;
  last_ = *times;
  lastAt_ = now;
  return usage;
}

}  // namespace s2z::agent
