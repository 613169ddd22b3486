// The guest's HTTP server (guest/guest_httpd.c, built for the host here) in a
// throw-away netns: routes, the counter, requests split into slow pieces, and
// a client that never finishes not wedging the single thread for good.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "common/unique_fd.h"
#include "tests/vmm/vm_net_fixture.h"
#include "vmm/vmm_process.h"

namespace s2z::vmm::testing {
namespace {

using namespace std::chrono_literals;

// Enters a fresh netns with lo up for the object's lifetime.
class LoopbackNetns {
 public:
  LoopbackNetns() {
    static std::atomic<int> counter{0};
    name_ = "s2zt-vmmh-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    REQUIRE(std::system(("ip netns add " + name_).c_str()) == 0);
    original_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    UniqueFd target(::open(("/var/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
    entered_ = original_ && target && ::setns(target.get(), CLONE_NEWNET) == 0;
    REQUIRE(entered_);
    REQUIRE(std::system("ip link set lo up") == 0);
  }
  ~LoopbackNetns() {
    if (entered_) ::setns(original_.get(), CLONE_NEWNET);
    (void)std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
  }

 private:
  std::string name_;
  UniqueFd original_;
  bool entered_ = false;
};

// Sends the request in pieces with pauses, returns the whole reply.
std::string sendInPieces(int port, const std::vector<std::string>& pieces) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return "";
  for (const auto& p : pieces) {
    (void)!::write(fd.get(), p.data(), p.size());
    std::this_thread::sleep_for(30ms);
  }
  std::string reply;
  char buf[1024];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof(buf))) > 0;) reply.append(buf, n);
  return reply;
}

}  // namespace

TEST_CASE("guest httpd: routes, counter, split requests, stalled clients") {
  LoopbackNetns ns;
  const int port = 18080;
  auto server = VmmProcess::spawn({{S2Z_GUEST_HTTPD, std::to_string(port)}, {}, "", -1, "", 077, {}});
  REQUIRE(server.ok());
  struct Stop {
    VmmProcess& p;
    ~Stop() { (void)p.kill(); }
  } stop{*server};

  HttpReply first;
  for (int i = 0; i < 50 && first.status == 0; ++i) {
    first = httpGet("127.0.0.1", port, "/", 1s);
    if (first.status == 0) std::this_thread::sleep_for(20ms);
  }
  CHECK(first.status == 200);
  CHECK(first.body == "ok\n");
  CHECK(httpGet("127.0.0.1", port, "/healthz", 1s).status == 200);
  CHECK(httpGet("127.0.0.1", port, "/counter", 1s).body == "1\n");
  CHECK(httpGet("127.0.0.1", port, "/counter?x=1", 1s).body == "2\n");
  CHECK(httpGet("127.0.0.1", port, "/nope", 1s).status == 404);

  std::string split = sendInPieces(port, {"GE", "T /coun", "ter HTTP/1.1\r\nHost: x\r\n", "\r\n"});
  CHECK(split.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(split.find("Connection: close") != std::string::npos);
  CHECK(split.substr(split.size() - 2) == "3\n");

  CHECK(sendInPieces(port, {"POST / HTTP/1.1\r\n\r\n"}).rfind("HTTP/1.1 400", 0) == 0);

  // A client that connects and never sends must not block the server forever.
  UniqueFd idle(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(idle.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  auto after = httpGet("127.0.0.1", port, "/counter", 8s);
  CHECK(after.status == 200);
  CHECK(after.body == "4\n");
}

}  // namespace s2z::vmm::testing
