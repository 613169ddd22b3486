// go-plugin serving (protocol doc §1.3-1.5): a gRPC server on a unix socket
// in a fresh private directory, and the handshake line the Nomad client
// reads from stdout.
#pragma once

#include <grpcpp/server.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::driver {

struct ServeOptions {
  // Where the private socket directory is created; empty: the environment's
  // PLUGIN_UNIX_SOCKET_DIR, else TMPDIR, else /tmp.
  std::filesystem::path socketParent;
  // Sync-server thread budget: every long-lived call holds one thread
  // (Fingerprint, TaskEvents, Stdio, Broker, and per task WaitTask(s) and
  // TaskStats), so this bounds concurrent tasks to roughly a third of it.
  int maxThreads = 1024;
};

class PluginServer {
 public:
  // Creates <parent>/s2z-kata-XXXXXX (mode 0700), listens on plugin.sock in
  // it and serves services (borrowed; they must outlive the server). Max
  // message sizes are raised to 2 GiB - 1 like the Go client's. Fails with
  // kSystem/kInternal; then nothing is left on disk.
  static Result<std::unique_ptr<PluginServer>> start(const std::vector<grpc::Service*>& services,
                                                     const ServeOptions& options = {});
  // Stops serving (if still serving) and removes the socket directory.
  ~PluginServer();
  PluginServer(const PluginServer&) = delete;
  PluginServer& operator=(const PluginServer&) = delete;

  const std::filesystem::path& socketPath() const { return socketPath_; }
  const std::filesystem::path& socketDir() const { return dir_; }
  // "1|2|unix|<abs socket path>|grpc|" (no newline).
  std::string handshakeLine() const;
  // Stops accepting calls; in-flight calls are cancelled after grace and
  // waited for. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

 private:
  PluginServer(std::filesystem::path dir, std::filesystem::path socket,
               std::unique_ptr<grpc::Server> server)
      : dir_(std::move(dir)), socketPath_(std::move(socket)), server_(std::move(server)) {}

  std::filesystem::path dir_;
  std::filesystem::path socketPath_;
  std::unique_ptr<grpc::Server> server_;
  bool stopped_ = false;
};

// Sends gRPC's own log lines (normally plain text on stderr) through spdlog,
// so they reach the Nomad agent log as hclog JSON too.
void routeGrpcLogsToSpdlog();

// The directory for the socket dir per ServeOptions::socketParent rules.
std::filesystem::path socketParentFromEnv();

// Writes line + "\n" to fd with one write and nothing else (the client reads
// the first stdout line). kSystem on failure.
Result<void> writeHandshake(int fd, const std::string& line);

}  // namespace s2z::driver
