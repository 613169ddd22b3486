// The client side of the gRPC connection to a plugin, opened like go-plugin:
// blocking dial over the handshake's socket with raised message limits, then
// GRPCStdio/StreamStdio and GRPCBroker/StartStream opened in the background
// (their errors are tolerated, as the Nomad client does). Also the go-plugin
// kill sequence (docs/nomad-plugin-protocol.md §1.4, 1.5, 1.8).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "standin/handshake.h"
#include "standin/plugin_process.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace s2z::standin {

class PluginConnection {
 public:
  ~PluginConnection();  // cancels the stdio/broker streams and joins their threads
  PluginConnection(const PluginConnection&) = delete;
  PluginConnection& operator=(const PluginConnection&) = delete;

  // Dials `handshake.address` and waits until the channel is connected.
  // Fails with kUnavailable if no connection within `timeout`.
  static Result<std::unique_ptr<PluginConnection>> connect(const Handshake& handshake,
                                                           std::chrono::milliseconds timeout);

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  // Calls /plugin.GRPCController/Shutdown. Fails with the gRPC status text.
  Result<void> controllerShutdown(std::chrono::milliseconds timeout);

  // gRPC status text with which StreamStdio / StartStream ended (empty while open).
  std::string stdioStatus() const;
  std::string brokerStatus() const;

  // Cancels the background streams (go-plugin closes the connection on kill).
  void close();

 private:
  PluginConnection() = default;
  void runStdio();
  void runBroker();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::ClientContext> stdioCtx_;
  std::unique_ptr<grpc::ClientContext> brokerCtx_;
  mutable std::mutex mu_;  // guards the two status strings
  std::string stdioStatus_;
  std::string brokerStatus_;
  std::thread stdioThread_;
  std::thread brokerThread_;
};

struct KillReport {
  bool shutdownRpcOk = false;
  std::string shutdownError;             // gRPC error of Controller/Shutdown, if any
  std::chrono::milliseconds timeToExit{0};  // from the Shutdown call to process exit
  bool sigkilled = false;                // did not exit within 2 s
  int waitStatus = 0;
};

// go-plugin's Kill: Controller/Shutdown (error ignored), close the connection,
// wait up to `grace` (2 s in go-plugin) for the exit, then SIGKILL the plugin pid
// only. `connection` may be null (nothing to call). Never fails.
KillReport killPlugin(PluginProcess& process, PluginConnection* connection,
                      std::chrono::milliseconds grace = std::chrono::seconds(2));

}  // namespace s2z::standin
