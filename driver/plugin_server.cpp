#include "driver/plugin_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <system_error>

#include <grpc/support/log.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

namespace s2z::driver {

namespace {

void grpcLogToSpdlog(gpr_log_func_args* args) {
  auto level = spdlog::level::debug;
  if (args->severity == GPR_LOG_SEVERITY_INFO) level = spdlog::level::info;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = spdlog::level::err;
  spdlog::log(level, "grpc: {} ({}:{})", args->message, args->file ? args->file : "?", args->line);
}

}  // namespace

void routeGrpcLogsToSpdlog() { gpr_set_log_function(grpcLogToSpdlog); }

std::filesystem::path socketParentFromEnv() {
  for (const char* var : {"PLUGIN_UNIX_SOCKET_DIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && v[0] != '\0') return v;
  }
  return "/tmp";
}

Result<std::unique_ptr<PluginServer>> PluginServer::start(const std::vector<grpc::Service*>& services,
                                                          const ServeOptions& options) {
  std::filesystem::path parent = options.socketParent.empty() ? socketParentFromEnv()
                                                              : options.socketParent;
  std::error_code ec;
  parent = std::filesystem::absolute(parent, ec);
  if (ec) return systemError("socket dir: resolve " + parent.string(), ec.value());
  std::string templ = (parent / "s2z-kata-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) return systemError("socket dir: mkdtemp " + templ);
  std::filesystem::path dir = templ;
  ::chmod(dir.c_str(), 0700);  // mkdtemp already uses 0700; be explicit
  std::filesystem::path socket = dir / "plugin.sock";

  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket.string(), grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(INT_MAX);
  builder.SetMaxSendMessageSize(INT_MAX);
  grpc::ResourceQuota quota("s2z-kata");
  quota.SetMaxThreads(options.maxThreads);
  builder.SetResourceQuota(quota);
  for (auto* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::filesystem::remove_all(dir, ec);
    return makeError(ErrorCode::kInternal, "gRPC server failed to listen on " + socket.string());
  }
  return std::unique_ptr<PluginServer>(new PluginServer(dir, socket, std::move(server)));
}

PluginServer::~PluginServer() {
  shutdown(std::chrono::milliseconds(0));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  if (ec) spdlog::warn("remove socket dir {}: {}", dir_.string(), ec.message());
}

std::string PluginServer::handshakeLine() const {
  return "1|2|unix|" + socketPath_.string() + "|grpc|";
}

void PluginServer::shutdown(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
}

Result<void> writeHandshake(int fd, const std::string& line) {
  std::string text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return systemError("write handshake");
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);  // a pipe ignores it; a file (tests) gets it on disk
  return okResult();
}

}  // namespace s2z::driver
