// A minimal client for QEMU's QMP (JSON lines over a unix socket): reads the
// greeting, negotiates capabilities, runs commands with an id and skips the
// asynchronous events that may arrive in between.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::vmm::qemu {

// What one QMP message means for the command with id `id`: nullopt when it is
// something else (an event, another id), the "return" value on success, and
// kVmmError quoting QEMU's class and desc on an "error" reply.
Result<std::optional<nlohmann::json>> interpretQmpMessage(const nlohmann::json& message,
                                                          uint64_t id);

// Splits complete lines off the front of buffer (QMP sends one JSON value per
// line); returns nullopt while no full line is buffered.
std::optional<std::string> takeLine(std::string& buffer);

class QmpClient {
 public:
  QmpClient() = default;
  QmpClient(QmpClient&&) noexcept = default;
  QmpClient& operator=(QmpClient&&) noexcept = default;

  // Connects to the socket, reads the greeting and sends qmp_capabilities.
  // Retries a refused or missing socket until the timeout (QEMU creates it
  // shortly after start). kTimeout when QEMU never answered, kVmmError on a bad
  // greeting.
  static Result<QmpClient> connect(const std::filesystem::path& socket,
                                   std::chrono::milliseconds timeout);

  // Wraps an fd that is already connected (tests); reads greeting and negotiates.
  static Result<QmpClient> fromConnectedFd(UniqueFd fd, std::chrono::milliseconds timeout);

  // Runs a command and returns its "return" value. kVmmError with QEMU's desc
  // when it refuses; kTimeout; kUnavailable when the connection closed (QEMU
  // exited, e.g. after `quit`).
  Result<nlohmann::json> execute(const std::string& command,
                                 const nlohmann::json& arguments = nlohmann::json::object(),
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Passes fd to QEMU over SCM_RIGHTS under `name` (QMP getfd), for commands
  // that take "fd:<name>" such as migrate. The fd stays open here too.
  Result<void> sendFd(const std::string& name, int fd,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  bool connected() const { return fd_.valid(); }

 private:
  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<nlohmann::json> readMessage(std::chrono::steady_clock::time_point deadline);
  Result<void> handshake(std::chrono::milliseconds timeout);
  Result<nlohmann::json> run(const std::string& command, const nlohmann::json& arguments,
                             std::chrono::milliseconds timeout, int passFd);

  UniqueFd fd_;
  std::string buffer_;
  uint64_t nextId_ = 1;
};

}  // namespace s2z::vmm::qemu
