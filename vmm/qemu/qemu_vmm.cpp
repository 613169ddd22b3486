// QemuVmm: process lifecycle (boot, shutdown, reattach, exit) and the version
// probe. Snapshot and restore are in qemu_snapshot.cpp.
#include "vmm/qemu/qemu_vmm.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/unix_socket.h"
#include "vmm/guest_ram_file.h"
#include "vmm/qemu/qemu_command_line.h"

namespace s2z::vmm {

using namespace std::chrono_literals;

std::unique_ptr<Vmm> makeQemuVmm() { return std::make_unique<qemu::QemuVmm>(); }

std::string parseQemuVersion(const std::string& output) {
  static const std::regex kVersion(R"(QEMU emulator version (\d+)\.(\d+)\.(\d+))");
  std::smatch m;
  if (!std::regex_search(output, m, kVersion)) return "";
  return m[1].str() + "." + m[2].str() + "." + m[3].str();
}

Result<HypervisorInfo> probeQemu(const std::filesystem::path& binary) {
  auto resolved = resolveExecutable(binary);
  if (!resolved.ok()) {
    return Error{ErrorCode::kNotFound, resolved.error().errnum,
                 "qemu binary not found at " + binary.string()};
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return systemError("probe qemu: pipe");
  UniqueFd readEnd(fds[0]), writeEnd(fds[1]);
  SpawnOptions opts;
  opts.argv = {resolved->string(), "--version"};
  opts.outputFd = writeEnd.get();
  auto proc = VmmProcess::spawn(opts);
  if (!proc.ok()) return proc.error().wrap("probe qemu");
  writeEnd.reset();
  std::string output;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(readEnd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || output.size() > 65536) break;
    output.append(buf, static_cast<size_t>(n));
  }
  if (!proc->waitExit(10s)) (void)proc->kill();
  proc->reap();
  std::string version = parseQemuVersion(output);
  if (version.empty()) {
    return makeError(ErrorCode::kFailedPrecondition,
                     binary.string() + " --version did not print a QEMU version: " + output.substr(0, 200));
  }
  int major = std::stoi(version.substr(0, version.find('.')));
  if (major < 6) {
    return makeError(ErrorCode::kFailedPrecondition,
                     "qemu " + version + " is too old: need 6.0 or newer (microvm memory-backend)");
  }
  return HypervisorInfo{version};
}

namespace qemu {

Result<void> QemuVmm::launch(const VmConfig& config, bool incoming,
                             std::chrono::steady_clock::time_point deadline) {
  if (process_.valid()) {
    return makeError(ErrorCode::kFailedPrecondition, "a qemu process already runs for this vm");
  }
  std::error_code ec;
  if (config.runDir.empty() || !std::filesystem::is_directory(config.runDir, ec)) {
    return makeError(ErrorCode::kInvalidArgument, "run dir " + config.runDir.string() + " missing");
  }
  if (config.tapFd >= 0 && ::fcntl(config.tapFd, F_GETFD) < 0) {
    return Error{ErrorCode::kInvalidArgument, errno, "tap fd " + std::to_string(config.tapFd)};
  }
  if (config.consoleFd >= 0 && ::fcntl(config.consoleFd, F_GETFD) < 0) {
    return Error{ErrorCode::kInvalidArgument, errno,
                 "console fd " + std::to_string(config.consoleFd)};
  }
  lightPaused_ = false;
  QemuPaths paths = qemuPaths(config.runDir);
  std::filesystem::remove(paths.qmpSocket, ec);
  if (config.agent) std::filesystem::remove(config.agent->socket, ec);
  // A fresh boot starts from empty RAM; a restore needs the RAM file as sleep left it.
  if (!incoming) {
    S2Z_TRY(createGuestRamFile(paths.guestRam, config.memoryMib << 20), "boot");
  } else if (!std::filesystem::exists(paths.guestRam, ec)) {
    // QEMU would create an empty one and resume a guest with zeroed memory.
    return makeError(ErrorCode::kNotFound, "guest RAM file " + paths.guestRam.string() + " missing");
  }

  QemuLaunch how{incoming, config.accelerator == Accelerator::kTcg ? hostTscKhz() : 0};
  SpawnOptions opts;
  opts.argv = buildQemuArgv(config, how);
  if (config.tapFd >= 0) opts.fds.push_back({config.tapFd, kTapChildFd});
  if (config.consoleFd >= 0) opts.fds.push_back({config.consoleFd, kConsoleChildFd});
  if (config.agent && config.agent->stdoutFd >= 0) {
    opts.fds.push_back({config.agent->stdoutFd, kStdoutChildFd});
  }
  if (config.agent && config.agent->stderrFd >= 0) {
    opts.fds.push_back({config.agent->stderrFd, kStderrChildFd});
  }
  auto qmpListener = listenUnix(paths.qmpSocket, 1);
  if (!qmpListener.ok()) return qmpListener.error().wrap("qmp socket");
  opts.fds.push_back({qmpListener->get(), kQmpChildFd});
  opts.logPath = paths.log;
  opts.workDir = config.runDir;  // socket paths in the argv may be relative to it
  opts.cgroups = config.cgroups;
  logOffset_ = std::filesystem::exists(paths.log, ec) ? std::filesystem::file_size(paths.log, ec) : 0;

  auto spawned = VmmProcess::spawn(opts);
  if (!spawned.ok()) return spawned.error().wrap("start qemu");
  process_ = std::move(*spawned);
  config_ = config;
  standby_ = incoming;
  spdlog::debug("vmm {}: qemu pid {} started ({})", config.name, process_.identity().pid,
                incoming ? "waiting for snapshot" : "boot");

  // QEMU holds the only listening end now: if it dies before accepting, the
  // connection queued below is reset and its pidfd turns readable.
  qmpListener->reset();
  auto connected = awaitQmp(paths.qmpSocket, deadline);
  if (!connected.ok()) {
    killAndForget();
    return connected.error();
  }
  qmp_ = std::move(*connected);
  return okResult();
}

Result<QmpClient> QemuVmm::awaitQmp(const std::filesystem::path& socket,
                                    std::chrono::steady_clock::time_point deadline) {
  auto exitedDuringStart = [&] {
    ExitStatus st = process_.reap();
    return makeError(ErrorCode::kVmmError,
                     "qemu exited during start (status " + std::to_string(st.exitCode) + "): " + logTail());
  };
  auto fd = connectUnix(socket);  // queued in the backlog until QEMU accepts
  if (!fd.ok()) {
    // Refused: the listening socket is gone, so QEMU is, or is about to be.
    if (process_.waitExit(std::chrono::seconds(2))) return exitedDuringStart();
    return fd.error().wrap("qmp");
  }
  pollfd waits[2] = {{fd->get(), POLLIN, 0}, {process_.exitFd(), POLLIN, 0}};
  int ready = 0;
  do {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    ready = ::poll(waits, 2, static_cast<int>(std::max<int64_t>(left.count(), 0)));
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return systemError("qmp: poll");
  if (ready == 0) {
    return makeError(ErrorCode::kTimeout, "qemu started but sent no QMP greeting in time: " + logTail());
  }
  if ((waits[1].revents & POLLIN) && !(waits[0].revents & POLLIN)) return exitedDuringStart();
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  auto client = QmpClient::fromConnectedFd(std::move(*fd), std::max(left, std::chrono::milliseconds(1)));
  if (client.ok()) return client;
  // QEMU greets before it loads the kernel, so a start that fails (no kernel,
  // a bad device) closes the connection mid-handshake; its exit follows.
  if (client.error().code == ErrorCode::kUnavailable && process_.waitExit(std::chrono::seconds(2))) {
    return exitedDuringStart();
  }
  return client.error().wrap("qemu started but QMP is not usable");
}

Result<QmpClient*> QemuVmm::qmp() {
  if (qmp_ && qmp_->connected()) return &*qmp_;
  if (!process_.valid()) return makeError(ErrorCode::kFailedPrecondition, "no qemu process");
  if (!process_.running()) {
    return makeError(ErrorCode::kVmmError, "qemu pid " + std::to_string(process_.identity().pid) +
                                               " has exited: " + logTail());
  }
  auto client = QmpClient::connect(qemuPaths(config_.runDir).qmpSocket, 5s);
  if (!client.ok()) return client.error();
  qmp_ = std::move(*client);
  return &*qmp_;
}

std::string QemuVmm::logTail() const {
  std::ifstream in(qemuPaths(config_.runDir).log);
  in.seekg(static_cast<std::streamoff>(logOffset_));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() > 800) text = "..." + text.substr(text.size() - 800);
  for (auto& c : text) {
    if (c == '\n') c = ';';
  }
  return text.empty() ? "(no output from qemu)" : text;
}

void QemuVmm::killAndForget() {
  qmp_.reset();
  if (process_.valid()) {
    auto killed = process_.kill();
    if (!killed.ok()) spdlog::error("vmm {}: {}", config_.name, killed.error().describe());
  }
  standby_ = false;
  lightPaused_ = false;
}

Result<void> QemuVmm::boot(const VmConfig& config) {
  // Under a loaded TCG host QEMU may take a while to create its QMP socket.
  S2Z_TRY(launch(config, /*incoming=*/false, std::chrono::steady_clock::now() + 30s),
          "boot " + config.name);
  return okResult();
}

Result<void> QemuVmm::shutdown(std::chrono::milliseconds grace) {
  if (!process_.valid()) return okResult();
  if (!standby_ && process_.running()) {
    // A guest that handles the ACPI power button powers off cleanly (and
    // -no-reboot makes QEMU exit); one that ignores it gets `quit`, then SIGKILL.
    auto q = qmp();
    if (q.ok()) (void)(*q)->execute("system_powerdown", nlohmann::json::object(), 2s);
    if (!process_.waitExit(grace) && q.ok() && (*q)->connected()) {
      (void)(*q)->execute("quit", nlohmann::json::object(), 2s);
      process_.waitExit(2s);
    }
  }
  if (process_.running()) {
    spdlog::info("vmm {}: qemu pid {} still running, killing", config_.name,
                 process_.identity().pid);
  }
  qmp_.reset();
  auto killed = process_.kill();  // reaps; ok when it already exited
  standby_ = false;
  if (!killed.ok()) return killed.error().wrap("shutdown " + config_.name);
  return okResult();
}

Result<void> QemuVmm::signal(int signo) {
  if (!process_.valid()) {
    return makeError(ErrorCode::kFailedPrecondition, "signal: no qemu process for " + config_.name);
  }
  return process_.signal(signo);
}

std::optional<ProcessIdentity> QemuVmm::process() const {
  if (!process_.valid()) return std::nullopt;
  return process_.identity();
}

Result<void> QemuVmm::reattach(const VmConfig& config, const ProcessIdentity& identity,
                               bool standby) {
  if (process_.valid()) {
    return makeError(ErrorCode::kFailedPrecondition, "reattach: this vmm already has a process");
  }
  auto adopted = VmmProcess::adopt(identity);
  if (!adopted.ok()) return adopted.error().wrap("reattach " + config.name);
  process_ = std::move(*adopted);
  config_ = config;
  standby_ = standby;
  qmp_.reset();  // connected lazily: the old plugin may still hold the socket
  logOffset_ = 0;
  return okResult();
}

ExitStatus QemuVmm::reapExit() {
  qmp_.reset();
  standby_ = false;
  return process_.reap();
}

}  // namespace qemu
}  // namespace s2z::vmm
