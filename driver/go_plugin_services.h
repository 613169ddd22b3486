// go-plugin's own services on the plugin's gRPC server (protocol doc §1.5):
// Health ("plugin" and "" SERVING), Controller (Shutdown), Stdio (kept open,
// sends nothing: Nomad discards it) and Broker (drained until the client
// closes; Nomad drivers never use it).
#pragma once

#include <functional>

#include "grpc/health/v1/health.grpc.pb.h"
#include "plugin/grpc_broker.grpc.pb.h"
#include "plugin/grpc_controller.grpc.pb.h"
#include "plugin/grpc_stdio.grpc.pb.h"

namespace s2z::driver {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest*,
                     grpc::health::v1::HealthCheckResponse*) override;
  // Sends the status once, then holds the stream until the client cancels.
  grpc::Status Watch(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest*,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>*) override;
};

class ControllerService final : public ::plugin::GRPCController::Service {
 public:
  // onShutdown must return quickly; it only triggers the shutdown, which
  // happens on another thread (this RPC's reply must still go out).
  explicit ControllerService(std::function<void()> onShutdown) : onShutdown_(std::move(onShutdown)) {}
  grpc::Status Shutdown(grpc::ServerContext*, const ::plugin::Empty*, ::plugin::Empty*) override;

 private:
  std::function<void()> onShutdown_;
};

class StdioService final : public ::plugin::GRPCStdio::Service {
 public:
  grpc::Status StreamStdio(grpc::ServerContext*, const google::protobuf::Empty*,
                           grpc::ServerWriter<::plugin::StdioData>*) override;
};

class BrokerService final : public ::plugin::GRPCBroker::Service {
 public:
  grpc::Status StartStream(grpc::ServerContext*,
                           grpc::ServerReaderWriter<::plugin::ConnInfo, ::plugin::ConnInfo>*) override;
};

}  // namespace s2z::driver
