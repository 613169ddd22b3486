// The stand-in's virtio-vsock device, host side only: the hybrid-vsock socket
// as Cloud Hypervisor makes it (vmm/hybrid_vsock.h for the protocol). It
// binds VmConfig `vsock.socket` without removing what is there (an existing
// file fails the boot or restore with EADDRINUSE, as in
// VsockUnixBackend::new) and leaves the file behind when the VMM exits.
// Connections get the VMM's side of the handshake: the CONNECT line is read a
// byte at a time and, as the stand-in has no guest and so no listener on any
// port, each is closed the way the real VMM closes a stream the guest
// answered with RST. A malformed line is closed the same way.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::tests::ch {

class StandinVsock {
 public:
  static Result<std::unique_ptr<StandinVsock>> bind(const std::filesystem::path& socket);
  ~StandinVsock();
  StandinVsock(const StandinVsock&) = delete;
  StandinVsock& operator=(const StandinVsock&) = delete;

 private:
  explicit StandinVsock(UniqueFd listener);
  void serve();

  UniqueFd listener_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace s2z::tests::ch
