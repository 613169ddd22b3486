// s2z-kata: a Nomad task-driver plugin. main only checks it was started by
// Nomad, sets up logging and signals, and serves until the client asks it to
// shut down. VMs run in their own sessions and outlive this process.
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "driver/base_service.h"
#include "driver/driver_service.h"
#include "driver/go_plugin_services.h"
#include "driver/hclog_sink.h"
#include "driver/plugin.h"
#include "driver/plugin_server.h"
#include "driver/real_host.h"
#include "driver/signal_watcher.h"

namespace {

constexpr const char* kCookieKey = "NOMAD_PLUGIN_MAGIC_COOKIE";
constexpr const char* kCookieValue =
    "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";
// The client SIGKILLs us 2 s after Controller/Shutdown; finish well before.
constexpr std::chrono::milliseconds kShutdownGrace{150};
constexpr std::chrono::milliseconds kExitDeadline{1700};

// Set once by Controller/Shutdown or SIGTERM; main waits on it.
class ShutdownLatch {
 public:
  void trigger() {
    {
      std::lock_guard lock(mu_);
      triggered_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return triggered_; });
  }

 private:
  std::mutex mu_;  // guards triggered_
  std::condition_variable cv_;
  bool triggered_ = false;
};

spdlog::level::level_enum logLevelFromEnv() {
  const char* v = std::getenv("S2Z_KATA_LOG_LEVEL");
  if (v == nullptr) return spdlog::level::debug;
  return spdlog::level::from_str(v);
}

}  // namespace

int main() {
  const char* cookie = std::getenv(kCookieKey);
  if (cookie == nullptr || std::strcmp(cookie, kCookieValue) != 0) {
    std::fprintf(stderr,
                 "This binary is a plugin. These are not meant to be executed directly.\n"
                 "s2z-kata is a Nomad task driver: put it in the Nomad client's plugin_dir and "
                 "add a plugin \"s2z-kata\" {} block to the agent configuration.\n");
    return 1;
  }
  s2z::driver::installHclogLogger(logLevelFromEnv());
  s2z::driver::routeGrpcLogsToSpdlog();

  ShutdownLatch latch;
  auto signals = s2z::driver::SignalWatcher::install([&] { latch.trigger(); });
  if (!signals.ok()) spdlog::warn("signals: {}", signals.error().describe());

  s2z::driver::Plugin plugin(s2z::driver::makeRealHost());
  s2z::driver::BaseService base(plugin);
  s2z::driver::DriverService driver(plugin);
  s2z::driver::HealthService health;
  s2z::driver::ControllerService controller([&] { latch.trigger(); });
  s2z::driver::StdioService stdio;
  s2z::driver::BrokerService broker;

  auto server = s2z::driver::PluginServer::start({&base, &driver, &health, &controller, &stdio, &broker});
  if (!server.ok()) {
    spdlog::error("serve: {}", server.error().describe());
    return 1;
  }
  auto handshake = s2z::driver::writeHandshake(STDOUT_FILENO, (*server)->handshakeLine());
  if (!handshake.ok()) {
    spdlog::error("handshake: {}", handshake.error().describe());
    return 1;
  }
  spdlog::info("plugin serving on {}", (*server)->socketPath().string());

  latch.wait();
  // Whatever hangs (a VM boot inside StartTask, say), leave before the
  // client's SIGKILL; VMs are in their own sessions and keep running.
  std::filesystem::path socketDir = (*server)->socketDir();
  std::thread([socketDir] {
    std::this_thread::sleep_for(kExitDeadline);
    spdlog::warn("shutdown took too long; exiting now");
    std::error_code ec;
    std::filesystem::remove_all(socketDir, ec);
    std::_Exit(0);
  }).detach();
  (*server)->shutdown(kShutdownGrace);
  server->reset();
  spdlog::info("plugin stopped");
  return 0;
}
