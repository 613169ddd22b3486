// The Nomad Driver gRPC service: thin methods that translate protobuf to the
// driver's own types and back. Long calls (Fingerprint, WaitTask, TaskStats,
// TaskEvents) poll for client cancellation every
// PluginOptions::cancelPollInterval and never end on their own otherwise
// (except TaskStats when its task is destroyed).
//
// Documented choices:
// - network_isolation_modes is [HOST, GROUP], must_create_network false:
//   in host mode each VM gets its own address on the driver's subnet and
//   StartTask returns it as the network override; in GROUP mode (bridge,
//   cni/*) Nomad makes the alloc's netns and the VM takes eth0's address
//   in it (driver/group_network.h, agent/group_network_backend.h).
// - StopTask ignores the signal name except SIGKILL (immediate kill): a VM
//   is stopped by an ACPI power-off, then killed after the timeout.
// - Exec (driver/exec_task.h) runs in agent tasks; a task that boots its own
//   init has no agent to run it and refuses with FAILED_PRECONDITION.
//   ExecTaskStreaming is a callback method (the rest are synchronous).
#pragma once

#include "driver/plugin.h"
#include "driver/proto_types.h"

namespace s2z::driver {

class DriverService final : public pb::Driver::WithCallbackMethod_ExecTaskStreaming<pb::Driver::Service> {
 public:
  explicit DriverService(Plugin& plugin) : plugin_(plugin) {}

  grpc::Status TaskConfigSchema(grpc::ServerContext*, const pb::TaskConfigSchemaRequest*,
                                pb::TaskConfigSchemaResponse*) override;
  grpc::Status Capabilities(grpc::ServerContext*, const pb::CapabilitiesRequest*,
                            pb::CapabilitiesResponse*) override;
  // Sends at once, then whenever the facts change, and at least every
  // fingerprintResendInterval; ends only when the client cancels.
  grpc::Status Fingerprint(grpc::ServerContext*, const pb::FingerprintRequest*,
                           grpc::ServerWriter<pb::FingerprintResponse>*) override;
  grpc::Status RecoverTask(grpc::ServerContext*, const pb::RecoverTaskRequest*,
                           pb::RecoverTaskResponse*) override;
  grpc::Status StartTask(grpc::ServerContext*, const pb::StartTaskRequest*,
                         pb::StartTaskResponse*) override;
  // Blocks until the task exits (result always set) or the client cancels
  // (CANCELLED). NOT_FOUND for an unknown or destroyed task. Sleeping is not
  // an exit.
  grpc::Status WaitTask(grpc::ServerContext*, const pb::WaitTaskRequest*,
                        pb::WaitTaskResponse*) override;
  // Graceful power-off, forced after the request's timeout. OK for unknown ids.
  grpc::Status StopTask(grpc::ServerContext*, const pb::StopTaskRequest*,
                        pb::StopTaskResponse*) override;
  // Frees everything (tap, address, files) and forgets the task; with force
  // a running task is stopped first, without it a running task is refused
  // (FAILED_PRECONDITION). OK for unknown ids.
  grpc::Status DestroyTask(grpc::ServerContext*, const pb::DestroyTaskRequest*,
                           pb::DestroyTaskResponse*) override;
  grpc::Status InspectTask(grpc::ServerContext*, const pb::InspectTaskRequest*,
                           pb::InspectTaskResponse*) override;
  // One sample every collection_interval (default 1 s) until cancelled or
  // the task is destroyed. Zero usage while the VM sleeps.
  grpc::Status TaskStats(grpc::ServerContext*, const pb::TaskStatsRequest*,
                         grpc::ServerWriter<pb::TaskStatsResponse>*) override;
  // Streams every instance's events until the client cancels.
  grpc::Status TaskEvents(grpc::ServerContext*, const pb::TaskEventsRequest*,
                          grpc::ServerWriter<pb::DriverTaskEvent>*) override;
  // INVALID_ARGUMENT for an unknown signal name, NOT_FOUND for an unknown task.
  grpc::Status SignalTask(grpc::ServerContext*, const pb::SignalTaskRequest*,
                          pb::SignalTaskResponse*) override;
  grpc::Status ExecTask(grpc::ServerContext*, const pb::ExecTaskRequest*,
                        pb::ExecTaskResponse*) override;
  grpc::ServerBidiReactor<pb::ExecTaskStreamingRequest, pb::ExecTaskStreamingResponse>* ExecTaskStreaming(
      grpc::CallbackServerContext*) override;
  grpc::Status CreateNetwork(grpc::ServerContext*, const pb::CreateNetworkRequest*,
                             pb::CreateNetworkResponse*) override;
  grpc::Status DestroyNetwork(grpc::ServerContext*, const pb::DestroyNetworkRequest*,
                              pb::DestroyNetworkResponse*) override;

 private:
  Plugin& plugin_;
};

// Sleeps up to d in slices of slice, returning false early if ctx is cancelled.
bool sleepUnlessCancelled(grpc::ServerContext* ctx, std::chrono::milliseconds d,
                          std::chrono::milliseconds slice);

}  // namespace s2z::driver
