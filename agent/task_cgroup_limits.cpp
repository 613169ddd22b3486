#include "agent/task_cgroup_limits.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"

namespace s2z::agent {

namespace {

constexpr uint64_t kMaxWeight = 10000;
constexpr const char* kWhere = "task cgroup limits";

// One value into one control file. A write(2) of the whole value: the
// kernel parses it at once and says EINVAL (or EBUSY, ENOSPC) then.
Result<void> writeControl(const std::filesystem::path& file, const std::string& value) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      spdlog::info("task cgroup: {} is not there (its controller is not enabled for the task): not set", file.string());
      return okResult();
    }
    return systemError("open " + file.string());
  }
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return systemError("write " + value + " to " + file.string());
  }
  return okResult();
}

}  // namespace

uint64_t cpuWeightForShares(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares <= kMinCpuShares) return 1;
  if (shares >= kMaxCpuShares) return kMaxWeight;
  // log2(shares) = l maps to 10^((l^2 + 125 l) / 612 - 7/34): l = 1 -> 1,
  // l = 10 -> 100, l = 18 -> 10000.
  double l = std::log2(static_cast<double>(shares));
  double exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return std::clamp<uint64_t>(static_cast<uint64_t>(std::ceil(std::pow(10.0, exponent))), 1, kMaxWeight);
}

Result<void> applyTaskLimits(const TaskCgroup& cgroup, const TaskLimits& limits) {
  const bool v1 = cgroup.v1;
  if (!cgroup.memory.empty()) {
    if (limits.memoryMaxBytes > 0) {
      S2Z_TRY(writeControl(cgroup.memory / (v1 ? "memory.limit_in_bytes" : "memory.max"),
                           std::to_string(limits.memoryMaxBytes)),
              kWhere);
    }
    if (limits.memoryLowBytes > 0) {
      S2Z_TRY(writeControl(cgroup.memory / (v1 ? "memory.soft_limit_in_bytes" : "memory.low"),
                           std::to_string(limits.memoryLowBytes)),
              kWhere);
    }
  }
  if (!cgroup.cpu.empty() && limits.cpuShares > 0) {
    S2Z_TRY(v1 ? writeControl(cgroup.cpu / "cpu.shares", std::to_string(limits.cpuShares))
               : writeControl(cgroup.cpu / "cpu.weight", std::to_string(cpuWeightForShares(limits.cpuShares))),
            kWhere);
  }
  if (!cgroup.cpu.empty() && limits.cpuQuotaMicros > 0) {
    // v1: the period first, so the quota is checked against the new one.
    if (v1) {
      S2Z_TRY(writeControl(cgroup.cpu / "cpu.cfs_period_us", std::to_string(limits.cpuPeriodMicros)), kWhere);
      S2Z_TRY(writeControl(cgroup.cpu / "cpu.cfs_quota_us", std::to_string(limits.cpuQuotaMicros)), kWhere);
    } else {
      S2Z_TRY(writeControl(cgroup.cpu / "cpu.max",
                           std::to_string(limits.cpuQuotaMicros) + " " + std::to_string(limits.cpuPeriodMicros)),
              kWhere);
    }
  }
  if (!limits.cpusetCpus.empty()) {
    // v1: only the task's own reserved cpuset; the shared partition's cores
    // are the client's to set.
    if (v1 && cgroup.reservedCpuset) S2Z_TRY(writeControl(cgroup.cpuset / "cpuset.cpus", limits.cpusetCpus), kWhere);
    if (!v1 && !cgroup.own.empty()) S2Z_TRY(writeControl(cgroup.own.front() / "cpuset.cpus", limits.cpusetCpus), kWhere);
  }
  return okResult();
}

}  // namespace s2z::agent
