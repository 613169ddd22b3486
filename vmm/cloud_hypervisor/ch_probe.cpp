// probeCloudHypervisor: asks the binary for its version and checks it is new
// enough for this backend.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "common/unique_fd.h"
#include "vmm/cloud_hypervisor/ch_version.h"
#include "vmm/cloud_hypervisor/ch_vmm.h"

extern char** environ;

namespace s2z::vmm {
namespace {

constexpr auto kVersionTimeout = std::chrono::seconds(5);

// Runs `binary --version` and returns what it printed on stdout.
Result<std::string> runVersion(const std::filesystem::path& binary) {
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return systemError("pipe");
  UniqueFd readEnd(pipeFds[0]);
  UniqueFd writeEnd(pipeFds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, writeEnd.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::string path = binary.string();
  std::string flag = "--version";
  char* argv[] = {path.data(), flag.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return systemError("run " + path + " --version", rc);
  writeEnd.reset();

  std::string out;
  auto deadline = std::chrono::steady_clock::now() + kVersionTimeout;
  char buf[512];
  while (out.size() < 64 * 1024) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{readEnd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::read(readEnd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  if (std::chrono::steady_clock::now() >= deadline) ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return makeError(ErrorCode::kFailedPrecondition,
                     path + " --version failed (status " + std::to_string(status) + ")");
  }
  return out;
}

}  // namespace

Result<HypervisorInfo> probeCloudHypervisor(const std::filesystem::path& binary) {
  std::error_code ec;
  if (binary.empty() || !std::filesystem::is_regular_file(binary, ec)) {
    return makeError(ErrorCode::kNotFound,
                     "cloud-hypervisor binary not found: " + binary.string());
  }
  if (::access(binary.c_str(), X_OK) != 0) {
    return systemError("cloud-hypervisor binary not executable: " + binary.string());
  }
  auto out = runVersion(binary);
  if (!out.ok()) return out.error().wrap("probe cloud-hypervisor");
  auto version = ch::parseChVersion(*out);
  if (!version.ok()) {
    Error e = version.error().wrap("probe cloud-hypervisor");
    e.code = ErrorCode::kFailedPrecondition;
    return e;
  }
  S2Z_TRY(ch::checkSupported(*version), "probe cloud-hypervisor");
  return HypervisorInfo{version->str()};
}

}  // namespace s2z::vmm
