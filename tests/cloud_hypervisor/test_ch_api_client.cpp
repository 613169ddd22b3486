// The API client's time limit covers the connect too: a hung VMM that still
// listens lets connections pile up in its backlog, and once that is full a
// blocking connect() would wait for an accept() that never comes, past any
// restore watchdog.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "vmm/cloud_hypervisor/ch_api_client.h"

using namespace s2z;
namespace fs = std::filesystem;

namespace {

sockaddr_un addressOf(const fs::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  return addr;
}

}  // namespace

TEST_CASE("ChApiClient: a listener that never accepts, backlog full, times out within the limit") {
  char tmpl[] = "/tmp/s2zt-chapi-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const fs::path dir = tmpl;
  const fs::path sock = dir / "api.sock";
  const sockaddr_un addr = addressOf(sock);

  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(listener.valid());
  REQUIRE(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener.get(), 0) == 0);  // nobody will ever accept()
  // Fill the backlog as earlier requests to a hung VMM would have.
  std::vector<UniqueFd> queued;
  for (int i = 0; i < 64; ++i) {
    UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    REQUIRE(c.valid());
    if (::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      REQUIRE(errno == EAGAIN);
      break;
    }
    queued.push_back(std::move(c));
  }
  REQUIRE_FALSE(queued.empty());

  // Without a bounded connect the call below would block for good: the
  // listener is closed after 3 s so that such a failure ends (refused).
  std::promise<void> finished;
  std::thread closer([fd = std::move(listener), done = finished.get_future()]() mutable {
    (void)done.wait_for(std::chrono::seconds(3));
    fd.reset();
  });

  vmm::ch::ChApiClient api(sock, std::chrono::milliseconds(200));
  auto began = std::chrono::steady_clock::now();
  auto ping = api.ping();
  auto took = std::chrono::steady_clock::now() - began;
  finished.set_value();
  closer.join();

  REQUIRE_FALSE(ping.ok());
  INFO(ping.error().describe());
  CHECK(ping.error().code == ErrorCode::kTimeout);
  CHECK(took >= std::chrono::milliseconds(150));
  CHECK(took < std::chrono::milliseconds(1000));
  std::error_code ec;
  fs::remove_all(dir, ec);
}
