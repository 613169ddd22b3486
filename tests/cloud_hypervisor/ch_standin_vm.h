// The stand-in's model of one Cloud Hypervisor VMM: its VM state machine and
// the documented answer to each API request, given the request and how many
// SCM_RIGHTS fds arrived with it, and its guest memory (ch_standin_ram.h). No
// sockets here (ch_api_standin.h serves it).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "vmm/cloud_hypervisor/ch_http.h"
#include "tests/cloud_hypervisor/ch_standin_ram.h"
#include "tests/cloud_hypervisor/ch_standin_vsock.h"
#include "vmm/cloud_hypervisor/ch_version.h"

namespace s2z::tests::ch {

enum class VmState { kNone, kCreated, kRunning, kPaused, kShutdown };
const char* vmStateName(VmState s);  // the API's spelling: "Created", ...

struct StandinReply {
  int status = 204;
  std::string body;       // JSON, or the error message for 4xx/5xx
  bool exitAfter = false; // the VMM exits after answering: vmm.shutdown, and
                          // vm.power-button once the guest has powered off
};

// A failure to inject: the endpoint answers status with message (once, or always).
struct InjectedFailure {
  int status = 500;
  std::string message;
};

class StandinVm {
 public:
  explicit StandinVm(vmm::ch::ChVersion version) : version_(version) {}

  // Answers one request. fdCount is the number of SCM_RIGHTS fds received
  // with it; a count that differs from what the body announces is a 400.
  StandinReply handle(const vmm::ch::HttpMessage& request, int fdCount);

  // Every later request to endpoint answers with the failure.
  void inject(const std::string& endpoint, InjectedFailure failure) {
    failures_[endpoint] = std::move(failure);
  }

  // Without userfaultfd an OnDemand restore fails (500), as the real VMM's
  // strict mode does; copy restores still work.
  void setUserfaultfd(bool available) { userfaultfd_ = available; }

  // What vm.power-button (always a 204 on a running VM) does next.
  enum class PowerButton {
    kGuestOffVmmExits,  // the guest powers off at once and the VMM exits with it
    kGuestOffVmmStays,  // the guest powers off, the VMM stays (vm.info: Shutdown)
    kIgnored,           // a guest without an ACPI power-button handler
  };
  void setPowerButton(PowerButton behaviour) { powerButton_ = behaviour; }

  VmState state() const { return state_; }
  const vmm::ch::ChVersion& version() const { return version_; }

  // The fds a request must carry per the API: 1 for vm.add-net, the sum of
  // net_fds[].num_fds for vm.restore, 0 for everything else.
  static int expectedFds(const std::string& endpoint, const nlohmann::json& body);
  // A line of "guest" console output into the configured serial file.
  void writeSerial(const std::string& line) const;

 private:
  StandinReply dispatch(const std::string& endpoint, const nlohmann::json& body, int fdCount);
  StandinReply addNet(const nlohmann::json& body, int fdCount);
  StandinReply snapshot(const nlohmann::json& body);
  StandinReply restore(const nlohmann::json& body, int fdCount);
  StandinReply transition(const std::string& endpoint);
  // The guest's memory mapped and its vsock socket bound (boot, restore);
  // false after an error reply.
  bool createDevices(StandinReply& error, const char* what);

  vmm::ch::ChVersion version_;
  VmState state_ = VmState::kNone;
  nlohmann::json config_;  // VmConfig as created (plus added NICs)
  std::map<std::string, InjectedFailure> failures_;
  bool userfaultfd_ = true;
  PowerButton powerButton_ = PowerButton::kGuestOffVmmExits;
  StandinRam ram_;
  std::unique_ptr<StandinVsock> vsock_;  // VmConfig has a vsock device
};

}  // namespace s2z::tests::ch
