// The real s2z-kata binary as Nomad's go-plugin client starts it: magic
// cookie check, handshake as the first and only stdout line, hclog JSON on
// stderr, SIGINT ignored, Controller/Shutdown exits within 2 s and removes
// the socket directory. No task is started, so no agent is created.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "hashicorp/nomad/plugins/base/proto/base.grpc.pb.h"
#include "plugin/grpc_controller.grpc.pb.h"
#include "tests/driver/driver_fixture.h"

namespace s2z::driver::test {
namespace {

using namespace std::chrono_literals;
namespace basepb = ::hashicorp::nomad::plugins::base::proto;

constexpr const char* kCookie =
    "NOMAD_PLUGIN_MAGIC_COOKIE=e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";

struct Child {
  pid_t pid = -1;
  UniqueFd out, err;
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  // Waits up to timeout; the exit status, or nullopt if still running.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return status;
      }
      std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;
  }
};

std::unique_ptr<Child> spawn(const std::vector<std::string>& env) {
  int out[2], err[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  auto child = std::make_unique<Child>();
  child->pid = ::fork();
  REQUIRE(child->pid >= 0);
  if (child->pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    char* argv[] = {const_cast<char*>(S2Z_KATA_BINARY), nullptr};
    ::execve(S2Z_KATA_BINARY, argv, envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  child->out.reset(out[0]);
  child->err.reset(err[0]);
  return child;
}

// Reads fd until a newline (or EOF / timeout).
std::string readLine(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char c;
    if (::read(fd, &c, 1) != 1) break;
    if (c == '\n') break;
    line.push_back(c);
  }
  return line;
}

std::string readAll(int fd) {
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  return all;
}

TEST_CASE("without the magic cookie the binary explains itself and exits 1") {
  auto child = spawn({"PATH=/usr/bin:/bin"});
  auto status = child->wait(5000ms);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 1);
  CHECK(readAll(child->out.get()).empty());
  std::string err = readAll(child->err.get());
  CHECK(err.find("plugin") != std::string::npos);
  CHECK(err.find("not meant to be executed directly") != std::string::npos);
}

TEST_CASE("serves go-plugin: handshake, PluginInfo, SIGINT ignored, Shutdown exits fast") {
  TempDir dir;
  auto child = spawn({kCookie, "PLUGIN_PROTOCOL_VERSIONS=2", "PATH=/usr/bin:/bin",
                      "PLUGIN_UNIX_SOCKET_DIR=" + dir.path().string()});
  std::string line = readLine(child->out.get(), 10000ms);
  std::smatch m;
  REQUIRE(std::regex_match(line, m, std::regex(R"(^1\|2\|unix\|(/[^|]+)\|grpc\|$)")));
  std::filesystem::path socket = m[1].str();
  CHECK(socket.parent_path().parent_path() == dir.path());

  auto channel = grpc::CreateChannel("unix:" + socket.string(), grpc::InsecureChannelCredentials());
  auto base = basepb::BasePlugin::NewStub(channel);
  auto call = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    basepb::PluginInfoResponse info;
    auto s = base->PluginInfo(&ctx, basepb::PluginInfoRequest(), &info);
    return s.ok() && info.name() == "s2z-kata";
  };
  REQUIRE(call());

  REQUIRE(::kill(child->pid, SIGINT) == 0);
  std::this_thread::sleep_for(200ms);
  CHECK_FALSE(child->wait(0ms));
  CHECK(call());  // still serving

  auto controller = ::plugin::GRPCController::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 2s);
  ::plugin::Empty empty;
  auto t0 = std::chrono::steady_clock::now();
  controller->Shutdown(&ctx, empty, &empty);  // the reply may race the exit
  auto status = child->wait(2000ms);
  REQUIRE(status);
  MESSAGE("exit after Shutdown: "
          << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
          << " ms");
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_FALSE(std::filesystem::exists(socket.parent_path()));
  CHECK(readAll(child->out.get()).empty());  // nothing after the handshake

  // Every stderr line is an hclog JSON object with string fields.
  std::string err = readAll(child->err.get());
  size_t lines = 0, start = 0;
  bool sawInterrupt = false;
  while (start < err.size()) {
    size_t end = err.find('\n', start);
    if (end == std::string::npos) end = err.size();
    std::string l = err.substr(start, end - start);
    start = end + 1;
    if (l.empty()) continue;
    ++lines;
    CAPTURE(l);
    auto j = nlohmann::json::parse(l, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["@level"].is_string());
    CHECK(j["@message"].is_string());
    CHECK(j["@timestamp"].is_string());
    if (j["@message"].get<std::string>().find("interrupt") != std::string::npos) sawInterrupt = true;
  }
  CHECK(lines >= 2);
  CHECK(sawInterrupt);
}

TEST_CASE("SIGTERM stops the plugin cleanly and removes the socket dir") {
  TempDir dir;
  auto child = spawn({kCookie, "PATH=/usr/bin:/bin", "PLUGIN_UNIX_SOCKET_DIR=" + dir.path().string()});
  std::string line = readLine(child->out.get(), 10000ms);
  std::smatch m;
  REQUIRE(std::regex_match(line, m, std::regex(R"(^1\|2\|unix\|(/[^|]+)\|grpc\|$)")));
  std::filesystem::path socket = m[1].str();
  REQUIRE(std::filesystem::exists(socket));
  REQUIRE(::kill(child->pid, SIGTERM) == 0);
  auto status = child->wait(2000ms);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_FALSE(std::filesystem::exists(socket.parent_path()));
}

}  // namespace
}  // namespace s2z::driver::test
