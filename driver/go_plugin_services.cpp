#include "driver/go_plugin_services.h"

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

namespace s2z::driver {
namespace {

using grpc::health::v1::HealthCheckResponse;
constexpr std::chrono::milliseconds kCancelPoll{200};

void waitForCancel(grpc::ServerContext* ctx) {
  while (!ctx->IsCancelled()) std::this_thread::sleep_for(kCancelPoll);
}

HealthCheckResponse::ServingStatus statusOf(const std::string& service) {
  if (service.empty() || service == "plugin") return HealthCheckResponse::SERVING;
  return HealthCheckResponse::SERVICE_UNKNOWN;
}

}  // namespace

grpc::Status HealthService::Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest* req,
                                  HealthCheckResponse* response) {
  auto status = statusOf(req->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service \"" + req->service() + "\"");
  }
  response->set_status(status);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  HealthCheckResponse response;
  response.set_status(statusOf(req->service()));
  if (!writer->Write(response)) return grpc::Status::OK;
  waitForCancel(ctx);
  return grpc::Status::OK;
}

grpc::Status ControllerService::Shutdown(grpc::ServerContext*, const ::plugin::Empty*,
                                         ::plugin::Empty*) {
  spdlog::info("controller: shutdown requested by the client");
  onShutdown_();
  return grpc::Status::OK;
}

grpc::Status StdioService::StreamStdio(grpc::ServerContext* ctx, const google::protobuf::Empty*,
                                       grpc::ServerWriter<::plugin::StdioData>*) {
  waitForCancel(ctx);
  return grpc::Status::OK;
}

grpc::Status BrokerService::StartStream(
    grpc::ServerContext*, grpc::ServerReaderWriter<::plugin::ConnInfo, ::plugin::ConnInfo>* stream) {
  ::plugin::ConnInfo info;
  while (stream->Read(&info)) {
    spdlog::debug("broker: ignoring connection info for service {}", info.service_id());
  }
  return grpc::Status::OK;
}

}  // namespace s2z::driver
