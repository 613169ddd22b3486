// The go-plugin handshake and socket directory.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <regex>

#include "driver/go_plugin_services.h"
#include "driver/plugin_server.h"
#include "tests/driver/driver_fixture.h"

namespace s2z::driver::test {
namespace {

TEST_CASE("handshake line, private socket dir, removed on exit") {
  TempDir dir;
  HealthService health;
  ServeOptions options;
  options.socketParent = dir.path();
  std::filesystem::path socketDir, socket;
  {
    auto server = PluginServer::start({&health}, options);
    REQUIRE(server.ok());
    socket = (*server)->socketPath();
    socketDir = (*server)->socketDir();
    CHECK(socket.is_absolute());
    CHECK(socketDir.parent_path() == dir.path());
    struct stat st {};
    REQUIRE(::stat(socketDir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    REQUIRE(::stat(socket.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));

    std::string line = (*server)->handshakeLine();
    CHECK(line == "1|2|unix|" + socket.string() + "|grpc|");
    CHECK(std::regex_match(line, std::regex(R"(^1\|2\|unix\|/[^|]+\|grpc\|$)")));

    // writeHandshake emits exactly the line and a newline.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(writeHandshake(fds[1], line).ok());
    ::close(fds[1]);
    char buf[512];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    ::close(fds[0]);
    CHECK(std::string(buf, static_cast<size_t>(n)) == line + "\n");

    // The socket answers gRPC.
    auto channel = grpc::CreateChannel("unix:" + socket.string(), grpc::InsecureChannelCredentials());
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("plugin");
    grpc::health::v1::HealthCheckResponse out;
    REQUIRE(stub->Check(&ctx, req, &out).ok());
  }
  CHECK_FALSE(std::filesystem::exists(socketDir));
}

TEST_CASE("socket parent from PLUGIN_UNIX_SOCKET_DIR, then TMPDIR, then /tmp") {
  const char* oldPlugin = std::getenv("PLUGIN_UNIX_SOCKET_DIR");
  const char* oldTmp = std::getenv("TMPDIR");
  std::string savedPlugin = oldPlugin ? oldPlugin : "", savedTmp = oldTmp ? oldTmp : "";
  ::setenv("PLUGIN_UNIX_SOCKET_DIR", "/run/a", 1);
  ::setenv("TMPDIR", "/run/b", 1);
  CHECK(socketParentFromEnv() == "/run/a");
  ::unsetenv("PLUGIN_UNIX_SOCKET_DIR");
  CHECK(socketParentFromEnv() == "/run/b");
  ::unsetenv("TMPDIR");
  CHECK(socketParentFromEnv() == "/tmp");
  if (oldPlugin) ::setenv("PLUGIN_UNIX_SOCKET_DIR", savedPlugin.c_str(), 1);
  if (oldTmp) ::setenv("TMPDIR", savedTmp.c_str(), 1);
}

TEST_CASE("server shutdown with a long call in flight returns promptly") {
  DriverFixture f;
  auto ctx = f.ctx(std::chrono::milliseconds(10000));
  auto reader = f.driver->TaskEvents(ctx.get(), pb::TaskEventsRequest());
  for (int i = 0; i < 100 && f.plugin->events().subscribers() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto t0 = std::chrono::steady_clock::now();
  f.server->shutdown(std::chrono::milliseconds(200));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500));
  pb::DriverTaskEvent e;
  CHECK_FALSE(reader->Read(&e));
}

}  // namespace
}  // namespace s2z::driver::test
