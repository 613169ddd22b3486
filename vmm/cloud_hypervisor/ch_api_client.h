// Client for the Cloud Hypervisor REST API on its --api-socket (HTTP/1.1 over
// a unix socket, one connection per request). Tap fds travel as SCM_RIGHTS
// ancillary data on the first sendmsg carrying the request, as ch-remote does.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "vmm/cloud_hypervisor/ch_http.h"

namespace s2z::vmm::ch {

struct PingInfo {
  std::string version;                 // e.g. "v45.0"
  int64_t pid = 0;                     // the VMM's pid; 0 when not reported
  std::vector<std::string> features;
};

class ChApiClient {
 public:
  explicit ChApiClient(std::filesystem::path socket,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : socket_(std::move(socket)), timeout_(timeout) {}

  // Sends one request and returns the response, whatever its status. The
  // whole exchange, connect included, ends within the client's timeout.
  // kUnavailable when the socket cannot be connected (VMM not listening yet)
  // or closes before answering; kTimeout when the timeout runs out (also
  // while a hung VMM's full backlog holds the connect); kInvalidArgument on
  // bad framing.
  Result<HttpMessage> send(std::string_view method, std::string_view endpoint,
                           const nlohmann::json* body, std::span<const int> fds = {});

  // send() plus status check: a non-2xx answer is kVmmError quoting the
  // VMM's message body ("PUT vm.snapshot: HTTP 500: <body>").
  Result<HttpMessage> call(std::string_view method, std::string_view endpoint,
                           const nlohmann::json* body = nullptr,
                           std::span<const int> fds = {});

  Result<PingInfo> ping();                                          // GET vmm.ping
  Result<void> createVm(const nlohmann::json& vmConfig);           // PUT vm.create
  Result<void> addNet(const nlohmann::json& netConfig, int tapFd); // PUT vm.add-net + 1 fd
  Result<void> boot();                                             // PUT vm.boot
  Result<void> pause();                                            // PUT vm.pause
  Result<void> resume();                                           // PUT vm.resume
  Result<void> snapshot(const nlohmann::json& snapshotConfig);     // PUT vm.snapshot
  // PUT vm.restore with exactly the fds announced in net_fds (kInvalidArgument
  // otherwise: the VMM would answer 400).
  Result<void> restore(const nlohmann::json& restoreConfig, std::span<const int> netFds);
  Result<nlohmann::json> info();                                   // GET vm.info
  Result<nlohmann::json> counters();                               // GET vm.counters
  Result<void> powerButton();                                      // PUT vm.power-button
  Result<void> shutdownVm();                                       // PUT vm.shutdown
  Result<void> shutdownVmm();                                      // PUT vmm.shutdown

  const std::filesystem::path& socket() const { return socket_; }

 private:
  std::filesystem::path socket_;
  std::chrono::milliseconds timeout_;
};

}  // namespace s2z::vmm::ch
