// connectHybridVsock against a scripted multiplexer that behaves as Cloud
// Hypervisor's (vmm/hybrid_vsock.h): it reads the CONNECT line a byte at a
// time, then answers "OK <port>\n" (the guest accepted), closes the stream
// (nothing listens on the port), or says something else.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "common/unix_socket.h"
#include "vmm/hybrid_vsock.h"
#include "tests/err_text.h"

namespace s2z::vmm {
namespace {

using namespace std::chrono_literals;

class ScriptedMuxer {
 public:
  // `answer` gets the accepted stream once the CONNECT line was read.
  explicit ScriptedMuxer(std::function<void(int)> answer) {
    char dirTemplate[] = "/tmp/s2z-vsock-test-XXXXXX";
    dir_ = ::mkdtemp(dirTemplate);
    socket_ = dir_ / "agent.sock";
    auto listener = listenUnix(socket_, 1);
    REQUIRE_MESSAGE(listener.ok(), s2z::tests::errText(listener));
    listener_ = std::move(*listener);
    thread_ = std::thread([this, answer] {
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      char c = 0;
      while (request_.size() < 64 && ::read(conn.get(), &c, 1) == 1) {
        request_.push_back(c);
        if (c == '\n') break;
      }
      answer(conn.get());
    });
  }
  ~ScriptedMuxer() {
    if (thread_.joinable()) thread_.join();
    std::filesystem::remove_all(dir_);
  }
  const std::filesystem::path& socket() const { return socket_; }
  // What the host sent before the answer (read it after connectHybridVsock returned).
  std::string request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  std::filesystem::path dir_, socket_;
  UniqueFd listener_;
  std::string request_;
  std::thread thread_;
};

void writeAll(int fd, const std::string& s) { REQUIRE(::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size())); }

TEST_CASE("hybrid vsock: the guest accepts; the bytes after OK are the guest's and stay unread") {
  ScriptedMuxer mux([](int fd) { writeAll(fd, "OK 1073741824\nhello from the guest"); });
  auto fd = connectHybridVsock(mux.socket(), 1024, 1000ms);
  REQUIRE_MESSAGE(fd.ok(), s2z::tests::errText(fd));
  CHECK(mux.request() == "CONNECT 1024\n");
  std::string got(64, '\0');
  ssize_t n = ::read(fd->get(), got.data(), got.size());
  REQUIRE(n > 0);
  got.resize(static_cast<size_t>(n));
  CHECK(got == "hello from the guest");
}

TEST_CASE("hybrid vsock: nothing listens on the port: the VMM closes the stream, kUnavailable") {
  ScriptedMuxer mux([](int) {});  // returning closes it
  auto fd = connectHybridVsock(mux.socket(), 1024, 1000ms);
  REQUIRE_FALSE(fd.ok());
  CHECK(fd.error().code == ErrorCode::kUnavailable);
  CHECK(fd.error().message.find("nothing in the guest listens on the port") != std::string::npos);
}

TEST_CASE("hybrid vsock: no VMM socket yet is kUnavailable (worth trying again)") {
  auto fd = connectHybridVsock("/tmp/s2z-no-such-dir/agent.sock", 1024, 100ms);
  REQUIRE_FALSE(fd.ok());
  CHECK(fd.error().code == ErrorCode::kUnavailable);
}

TEST_CASE("hybrid vsock: an answer other than OK <n> is a VMM error naming it") {
  ScriptedMuxer mux([](int fd) { writeAll(fd, "ERR no such port\n"); });
  auto fd = connectHybridVsock(mux.socket(), 1024, 1000ms);
  REQUIRE_FALSE(fd.ok());
  CHECK(fd.error().code == ErrorCode::kVmmError);
  CHECK(fd.error().message.find("ERR no such") != std::string::npos);
}

TEST_CASE("hybrid vsock: a line that never ends is not read past 16 bytes") {
  ScriptedMuxer mux([](int fd) { writeAll(fd, std::string(40, 'x')); });
  auto fd = connectHybridVsock(mux.socket(), 1024, 1000ms);
  REQUIRE_FALSE(fd.ok());
  CHECK(fd.error().code == ErrorCode::kVmmError);
}

TEST_CASE("hybrid vsock: no answer within the timeout is kTimeout") {
  ScriptedMuxer mux([](int) { std::this_thread::sleep_for(300ms); });
  auto start = std::chrono::steady_clock::now();
  auto fd = connectHybridVsock(mux.socket(), 1024, 100ms);
  REQUIRE_FALSE(fd.ok());
  CHECK(fd.error().code == ErrorCode::kTimeout);
  CHECK(std::chrono::steady_clock::now() - start < 290ms);
}

}  // namespace
}  // namespace s2z::vmm
