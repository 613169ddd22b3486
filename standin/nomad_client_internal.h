// Private pieces of NomadClient shared by its two source files.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/client_context.h>

#include "standin/log_collector.h"
#include "standin/nomad_client.h"
#include "standin/template_render.h"

namespace s2z::standin {

// The deadline of a unary call that should answer at once.
inline constexpr auto kUnaryTimeout = std::chrono::seconds(30);

inline void withDeadline(grpc::ClientContext& ctx, std::chrono::milliseconds d) {
  ctx.set_deadline(std::chrono::system_clock::now() + d);
}

// What the stand-in keeps per task (like the client's task runner + logmon).
struct NomadClient::TaskRecord {
  ~TaskRecord() {
    if (lateLogs.joinable()) lateLogs.join();
  }
  StartedTask started;
  std::unique_ptr<LogCollector> logs;  // guarded by NomadClient::tasksMu_ once tracked
  std::thread lateLogs;                // starts `logs` late (ClientOptions::logCollectorDelay)
  std::atomic<bool> destroyed{false};
  std::string taskDir;                  // <alloc_dir>/<task>
  std::vector<TemplateSpec> templates;
};

}  // namespace s2z::standin
