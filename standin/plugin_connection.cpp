#include "standin/plugin_connection.h"

#include <climits>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "plugin/grpc_broker.grpc.pb.h"
#include "plugin/grpc_controller.grpc.pb.h"
#include "plugin/grpc_stdio.grpc.pb.h"
#include "standin/rpc_error.h"

namespace s2z::standin {

Result<std::unique_ptr<PluginConnection>> PluginConnection::connect(
    const Handshake& handshake, std::chrono::milliseconds timeout) {
  std::unique_ptr<PluginConnection> c(new PluginConnection());
  grpc::ChannelArguments args;
  // The Go client allows 2 GiB-1 per message; gRPC's 4 MiB default is too small
  // for large env maps or driver_state.
  args.SetMaxReceiveMessageSize(INT_MAX);
  args.SetMaxSendMessageSize(INT_MAX);
  // go-plugin dials target "unused"; the authority carries no meaning.
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "unused");
  std::string target =
      handshake.network == "unix" ? "unix:" + handshake.address : handshake.address;
  c->channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!c->channel_->WaitForConnected(std::chrono::system_clock::now() + timeout)) {
    return makeError(ErrorCode::kUnavailable, "cannot connect to plugin at " + target);
  }
  c->stdioCtx_ = std::make_unique<grpc::ClientContext>();
  c->brokerCtx_ = std::make_unique<grpc::ClientContext>();
  c->stdioThread_ = std::thread([raw = c.get()] { raw->runStdio(); });
  c->brokerThread_ = std::thread([raw = c.get()] { raw->runBroker(); });
  return c;
}

void PluginConnection::runStdio() {
  auto stub = plugin::GRPCStdio::NewStub(channel_);
  google::protobuf::Empty request;
  auto reader = stub->StreamStdio(stdioCtx_.get(), request);
  plugin::StdioData data;
  while (reader->Read(&data)) {
    // Nomad configures no sinks: the data is discarded.
  }
  grpc::Status status = reader->Finish();
  std::lock_guard lock(mu_);
  stdioStatus_ = statusText(status);
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    spdlog::warn("standin: plugin stdio stream ended: {}", stdioStatus_);
  }
}

void PluginConnection::runBroker() {
  auto stub = plugin::GRPCBroker::NewStub(channel_);
  auto stream = stub->StartStream(brokerCtx_.get());
  plugin::ConnInfo info;
  while (stream->Read(&info)) {
    // Nomad drivers never use the broker.
  }
  grpc::Status status = stream->Finish();
  std::lock_guard lock(mu_);
  brokerStatus_ = statusText(status);
}

std::string PluginConnection::stdioStatus() const {
  std::lock_guard lock(mu_);
  return stdioStatus_;
}

std::string PluginConnection::brokerStatus() const {
  std::lock_guard lock(mu_);
  return brokerStatus_;
}

Result<void> PluginConnection::controllerShutdown(std::chrono::milliseconds timeout) {
  auto stub = plugin::GRPCController::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  plugin::Empty request, response;
  grpc::Status status = stub->Shutdown(&ctx, request, &response);
  if (!status.ok()) return rpcError("Controller/Shutdown", status);
  return okResult();
}

void PluginConnection::close() {
  if (stdioCtx_) stdioCtx_->TryCancel();
  if (brokerCtx_) brokerCtx_->TryCancel();
  if (stdioThread_.joinable()) stdioThread_.join();
  if (brokerThread_.joinable()) brokerThread_.join();
}

PluginConnection::~PluginConnection() { close(); }

KillReport killPlugin(PluginProcess& process, PluginConnection* connection,
                      std::chrono::milliseconds grace) {
  KillReport report;
  auto start = std::chrono::steady_clock::now();
  if (connection) {
    auto shut = connection->controllerShutdown(grace);
    report.shutdownRpcOk = shut.ok();
    if (!shut.ok()) report.shutdownError = shut.error().message;
    connection->close();
  }
  auto status = process.waitExit(grace);
  if (!status.ok()) {
    report.sigkilled = true;
    process.sigkill();
    status = process.waitExit(std::chrono::seconds(10));
  }
  report.timeToExit = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  if (status.ok()) report.waitStatus = *status;
  return report;
}

}  // namespace s2z::standin
