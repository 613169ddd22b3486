// A stand-in for the Cloud Hypervisor API server: listens on a unix socket,
// receives each request with its SCM_RIGHTS fds, checks it against the
// documented API (StandinVm) and answers with the documented status codes.
// Every request is recorded with what the fds turned out to be.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"
#include "tests/cloud_hypervisor/ch_standin_vm.h"

namespace s2z::tests::ch {

struct FdCheck {
  bool valid = false;    // an open descriptor arrived
  bool isTap = false;    // TUNGETIFF answered: a tun/tap queue
  std::string tapName;   // its interface name
};

struct RecordedRequest {
  std::string method;
  std::string endpoint;      // "vm.restore"
  nlohmann::json body;       // null when none or not JSON
  int fdsReceived = 0;
  int fdsExpected = 0;       // what the body announces (StandinVm::expectedFds)
  bool fdsWithFirstChunk = true;
  std::vector<FdCheck> fds;
  int status = 0;
  std::string reply;

  nlohmann::json toJson() const;
  static RecordedRequest fromJson(const nlohmann::json& j);
};

class ChApiStandin {
 public:
  // Binds and listens on socket (removing a stale file). kSystem on failure.
  static Result<std::unique_ptr<ChApiStandin>> listen(const std::filesystem::path& socket,
                                                      vmm::ch::ChVersion version);
  ~ChApiStandin();

  StandinVm& vm() { return vm_; }

  // Serves one connection (one request) after another until vmm.shutdown was
  // answered or stop() is called. onRequest sees each record as it is made.
  Result<void> serve(const std::function<void(const RecordedRequest&)>& onRequest = {});
  // Makes serve() return; callable from another thread.
  void stop();

  std::vector<RecordedRequest> requests() const;

 private:
  ChApiStandin(std::filesystem::path socket, UniqueFd listenFd, UniqueFd stopFd,
               vmm::ch::ChVersion version);
  // Reads one request and its fds; answers it. Returns true when the VMM should exit.
  Result<bool> serveConnection(int conn, const std::function<void(const RecordedRequest&)>& cb);

  std::filesystem::path socket_;
  UniqueFd listenFd_;
  UniqueFd stopFd_;  // eventfd
  StandinVm vm_;
  mutable std::mutex mu_;  // guards requests_
  std::vector<RecordedRequest> requests_;
};

}  // namespace s2z::tests::ch
