#include "driver/task_stats.h"

#include <google/protobuf/util/time_util.h>

namespace s2z::driver {

pb::TaskStats toTaskStats(const std::string& taskId, const agent::ResourceUsage& usage,
                          std::chrono::system_clock::time_point now, double mhzPerCore) {
  pb::TaskStats stats;
  stats.set_id(taskId);
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  *stats.mutable_timestamp() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(nanos);

  auto* agg = stats.mutable_agg_resource_usage();
  auto* cpu = agg->mutable_cpu();
  cpu->set_percent(usage.cpuPercent);
  cpu->set_user_mode(usage.userPercent);
  cpu->set_system_mode(usage.systemPercent);
  cpu->add_measured_fields(pb::CPUUsage::PERCENT);
  cpu->add_measured_fields(pb::CPUUsage::USER_MODE);
  cpu->add_measured_fields(pb::CPUUsage::SYSTEM_MODE);
  if (mhzPerCore > 0) {
    cpu->set_total_ticks(usage.cpuPercent / 100.0 * mhzPerCore);
    cpu->add_measured_fields(pb::CPUUsage::TOTAL_TICKS);
  }
  if (usage.throttlingMeasured) {
    // As docker reports them: periods the quota ran out in, and the time (ns).
    cpu->set_throttled_periods(usage.throttledPeriods);
    cpu->set_throttled_time(usage.throttledNanoseconds);
    cpu->add_measured_fields(pb::CPUUsage::THROTTLED_PERIODS);
    cpu->add_measured_fields(pb::CPUUsage::THROTTLED_TIME);
  }
  auto* memory = agg->mutable_memory();
  memory->set_rss(usage.rssBytes);
  memory->add_measured_fields(pb::MemoryUsage::RSS);
  if (usage.cgroupMeasured) {
    // Like docker's: the cgroup's charge, page cache included.
    memory->set_usage(usage.cgroupBytes);
    memory->add_measured_fields(pb::MemoryUsage::USAGE);
  }
  return stats;
}

}  // namespace s2z::driver
