// Long-lived Driver RPCs: Fingerprint, TaskStats, TaskEvents.
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "driver/driver_service.h"
#include "driver/fingerprint.h"
#include "driver/task_stats.h"

namespace s2z::driver {
namespace {

using google::protobuf::util::TimeUtil;

constexpr std::chrono::milliseconds kDefaultStatsInterval{1000};
constexpr std::chrono::milliseconds kMinStatsInterval{100};

pb::DriverTaskEvent toProto(const DriverEvent& e) {
  pb::DriverTaskEvent out;
  out.set_task_id(e.taskId);
  out.set_alloc_id(e.allocId);
  out.set_task_name(e.taskName);
  *out.mutable_timestamp() = TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(e.time.time_since_epoch()).count());
  out.set_message(e.message);
  for (const auto& [k, v] : e.annotations) (*out.mutable_annotations())[k] = v;
  return out;
}

}  // namespace

grpc::Status DriverService::Fingerprint(grpc::ServerContext* ctx, const pb::FingerprintRequest*,
                                        grpc::ServerWriter<pb::FingerprintResponse>* writer) {
  const auto& opts = plugin_.options();
  std::optional<pb::FingerprintResponse> last;
  auto lastSent = std::chrono::steady_clock::now();
  while (!ctx->IsCancelled()) {
    pb::FingerprintResponse current = toFingerprint(gatherFingerprint(plugin_));
    auto now = std::chrono::steady_clock::now();
    bool changed = !last || !google::protobuf::util::MessageDifferencer::Equals(*last, current);
    if (changed || now - lastSent >= opts.fingerprintResendInterval) {
      if (changed) {
        spdlog::info("fingerprint: {} ({})",
                     current.health() == pb::FingerprintResponse::HEALTHY ? "healthy" : "unhealthy",
                     current.health_description());
      }
      if (!writer->Write(current)) break;  // client gone
      last = std::move(current);
      lastSent = now;
    }
    if (!sleepUnlessCancelled(ctx, opts.fingerprintCheckInterval, opts.cancelPollInterval)) break;
  }
  return grpc::Status::OK;
}

grpc::Status DriverService::TaskStats(grpc::ServerContext* ctx, const pb::TaskStatsRequest* request,
                                      grpc::ServerWriter<pb::TaskStatsResponse>* writer) {
  const std::string& id = request->task_id();
  auto handle = plugin_.tasks().get(id);
  if (!handle) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "task stats: task " + id + " not found");
  }
  std::chrono::milliseconds interval = kDefaultStatsInterval;
  if (request->has_collection_interval()) {
    auto ms = TimeUtil::DurationToMilliseconds(request->collection_interval());
    if (ms > 0) interval = std::max(kMinStatsInterval, std::chrono::milliseconds(ms));
  }
  while (!ctx->IsCancelled()) {
    // A destroyed task ends the stream; the client stops asking for it.
    if (plugin_.tasks().get(id) != handle) break;
    pb::TaskStatsResponse response;
    *response.mutable_stats() = toTaskStats(id, handle->instance()->usage(),
                                            std::chrono::system_clock::now(),
                                            plugin_.cpuMhzPerCore());
    if (!writer->Write(response)) break;
    if (!sleepUnlessCancelled(ctx, interval, plugin_.options().cancelPollInterval)) break;
  }
  return grpc::Status::OK;
}

grpc::Status DriverService::TaskEvents(grpc::ServerContext* ctx, const pb::TaskEventsRequest*,
                                       grpc::ServerWriter<pb::DriverTaskEvent>* writer) {
  auto subscription = plugin_.events().subscribe();
  while (!ctx->IsCancelled()) {
    auto event = subscription->next(plugin_.options().cancelPollInterval);
    if (!event) continue;
    if (!writer->Write(toProto(*event))) break;
  }
  if (subscription->dropped() > 0) {
    spdlog::warn("task events: {} events dropped (stream too slow)", subscription->dropped());
  }
  return grpc::Status::OK;
}

}  // namespace s2z::driver
