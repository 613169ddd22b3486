// The host end of the guest channel against a scripted guest on a unix
// socket (the VMM's listening socket in real life): Hello until answered,
// requests matched to responses, a request made while no VMM runs delivered
// once after the next connect, the workload's exit recorded before the guest
// is acknowledged.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "agent/guest_channel.h"
#include "common/unique_fd.h"
#include "guestlink/frame_codec.h"
#include "guestlink/reliable_session.h"
#include "tests/err_text.h"
#include "tests/scratch_dir.h"

using namespace s2z;
using namespace s2z::agent;
using namespace std::chrono_literals;

namespace {

// One guest agent's protocol side, without a VM: accepts one connection at a
// time; the test decides what it answers and when it drops the connection.
class ScriptedGuest {
 public:
  explicit ScriptedGuest(const std::filesystem::path& socket) : path_(socket) {}
  ~ScriptedGuest() { stop(); }

  void listen() {
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_.get(), 4) == 0);
    thread_ = std::thread([this] { serve(); });
  }
  void stop() {
    stopping_ = true;
    if (listener_) ::shutdown(listener_.get(), SHUT_RDWR);
    dropConnection();
    if (thread_.joinable()) thread_.join();
    listener_.reset();
    std::filesystem::remove(path_);
  }
  // Cuts the current connection, as a VMM exiting at a sleep does.
  void dropConnection() {
    std::lock_guard lock(mu_);
    if (conn_ >= 0) ::shutdown(conn_, SHUT_RDWR);
  }
  // Sends the workload's exit as a sequenced event.
  void reportExit(int code) {
    pb::Frame f;
    f.mutable_event()->mutable_workload_exited()->set_exit_code(code);
    std::lock_guard lock(mu_);
    write(session_.send(f));
  }

  // Plays a hybrid-vsock multiplexer in front of the agent (Cloud
  // Hypervisor): each connection starts with a CONNECT line, recorded; the
  // first `vsockRefusals` are closed (the booting agent does not listen yet),
  // the rest answered "OK <n>".
  std::atomic<bool> vsock{false};
  std::atomic<int> vsockRefusals{0};
  std::vector<std::string> connectLines() {
    std::lock_guard lock(mu_);
    return connectLines_;
  }

  std::atomic<int> hellosIgnored{0};   // answer Hello only after this many
  std::atomic<bool> dropOnSignal{false};  // drop the connection instead of answering a signal
  std::atomic<int> signalsDelivered{0};
  std::atomic<int> hellos{0};
  size_t unacknowledged() {
    std::lock_guard lock(mu_);
    return session_.unacknowledged();
  }

 private:
  void write(const pb::Frame& f) {
    if (conn_ < 0) return;
    std::string bytes = guestlink::encodeFrame(f);
    (void)::send(conn_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  // The multiplexer's side of the handshake; false: the stream is refused.
  bool answerConnect(int c) {
    std::string line;
    char ch = 0;
    while (line.size() < 32 && ::recv(c, &ch, 1, 0) == 1) {
      line.push_back(ch);
      if (ch == '\n') break;
    }
    {
      std::lock_guard lock(mu_);
      connectLines_.push_back(line);
    }
    if (vsockRefusals > 0) {
      --vsockRefusals;
      return false;
    }
    return ::send(c, "OK 1073741824\n", 14, MSG_NOSIGNAL) == 14;
  }

  void serve() {
    while (!stopping_) {
      int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      if (vsock && !answerConnect(c)) {
        ::close(c);
        continue;
      }
      {
        std::lock_guard lock(mu_);
        conn_ = c;
      }
      guestlink::FrameDecoder decoder;
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(c, buf, sizeof buf, 0)) > 0) {
        decoder.feed(buf, static_cast<size_t>(n));
        while (auto f = decoder.next()) handle(*f);
      }
      std::lock_guard lock(mu_);
      ::close(c);
      conn_ = -1;
    }
  }

  void handle(const pb::Frame& f) {
    std::lock_guard lock(mu_);
    if (f.has_hello()) {
      if (hellos++ < hellosIgnored) return;  // still booting
      if (f.hello().session() != hostSession_) session_.resetReceive();
      hostSession_ = f.hello().session();
      pb::Frame reply;
      reply.mutable_hello_reply()->set_protocol_version(guestlink::kProtocolVersion);
      session_.receive(f);
      auto again = session_.resendAfter(f.ack());
      reply.mutable_hello_reply()->set_next_seq(again.empty() ? session_.nextSeq() : again.front().seq());
      write(session_.unsequenced(reply));
      for (const auto& frame : again) write(frame);
      return;
    }
    if (!session_.receive(f) || !f.has_request()) return;
    pb::Frame answer;
    answer.mutable_response()->set_id(f.request().id());
    if (f.request().has_signal_process()) {
      if (dropOnSignal.exchange(false)) {
        // Delivered, but the answer is lost with the connection: it must be
        // sent again after the reconnect, and the signal not delivered twice.
        ++signalsDelivered;
        session_.send(answer);
        ::shutdown(conn_, SHUT_RDWR);
        return;
      }
      ++signalsDelivered;
    } else if (f.request().has_start_workload()) {
      answer.mutable_response()->set_error("command \"nope\" not found");
    }
    write(session_.send(answer));
  }

  std::filesystem::path path_;
  UniqueFd listener_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  int conn_ = -1;
  guestlink::ReliableSession session_;
  uint64_t hostSession_ = 0;
  std::vector<std::string> connectLines_;
};

// The address of a VMM socket that is the guest's port itself (QEMU).
ChannelAddress serialPort(const std::filesystem::path& socket) { return {socket, std::nullopt}; }

pb::Request signalRequest(int signo) {
  pb::Request r;
  r.mutable_signal_process()->set_signal(signo);
  return r;
}

}  // namespace

TEST_CASE("connect waits for the VMM's socket and repeats Hello until a booting guest answers") {
  tests::ScratchDir dir;
  ScriptedGuest guest(dir.path / "agent.sock");
  guest.hellosIgnored = 2;
  GuestChannel channel(serialPort(dir.path / "agent.sock"), nullptr);
  auto late = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(200ms);
    guest.listen();
  });
  auto hello = channel.connect(5s);
  REQUIRE_MESSAGE(hello.ok(), s2z::tests::errText(hello));
  CHECK(hello->protocol_version() == 1);
  CHECK(guest.hellos >= 3);
  CHECK(channel.connected());
}

TEST_CASE("through a hybrid-vsock multiplexer: CONNECT to the agent's port, again while it does not listen, then Hello") {
  tests::ScratchDir dir;
  ScriptedGuest guest(dir.path / "agent.sock");
  guest.vsock = true;
  guest.vsockRefusals = 3;
  guest.listen();
  GuestChannel channel({dir.path / "agent.sock", guestlink::kAgentVsockPort}, nullptr);
  auto hello = channel.connect(5s);
  REQUIRE_MESSAGE(hello.ok(), s2z::tests::errText(hello));
  auto lines = guest.connectLines();
  REQUIRE(lines.size() == 4);
  for (const auto& line : lines) CHECK(line == "CONNECT 1024\n");
  CHECK(guest.hellos == 1);  // the first byte after OK is the Hello

  // A sleep cuts the stream; the next connect asks for the port again and
  // a request still gets its answer.
  guest.dropConnection();
  std::this_thread::sleep_for(50ms);
  REQUIRE(channel.connect(5s).ok());
  CHECK(guest.connectLines().size() == 5);
  auto answer = channel.call(signalRequest(15), 5s);
  REQUIRE_MESSAGE(answer.ok(), s2z::tests::errText(answer));
  CHECK(guest.signalsDelivered == 1);
}

TEST_CASE("a guest's error answer is the call's error; no guest at all is a timeout") {
  tests::ScratchDir dir;
  {
    ScriptedGuest guest(dir.path / "agent.sock");
    guest.listen();
    GuestChannel channel(serialPort(dir.path / "agent.sock"), nullptr);
    REQUIRE(channel.connect(5s).ok());
    pb::Request start;
    start.mutable_start_workload()->add_argv("nope");
    auto answer = channel.call(start, 5s);
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.error().code == ErrorCode::kFailedPrecondition);
    CHECK(answer.error().message == "command \"nope\" not found");
  }
  GuestChannel nobody(serialPort(dir.path / "agent.sock"), nullptr);
  auto refused = nobody.connect(300ms);
  REQUIRE_FALSE(refused.ok());
}

TEST_CASE("a request made while no VMM runs is delivered once after the next connect") {
  tests::ScratchDir dir;
  ScriptedGuest guest(dir.path / "agent.sock");
  guest.listen();
  GuestChannel channel(serialPort(dir.path / "agent.sock"), nullptr);
  REQUIRE(channel.connect(5s).ok());
  channel.disconnect();  // asleep
  auto waiting = std::async(std::launch::async, [&] { return channel.call(signalRequest(10), 10s); });
  std::this_thread::sleep_for(200ms);
  CHECK(guest.signalsDelivered == 0);
  REQUIRE(channel.connect(5s).ok());  // woken
  auto answer = waiting.get();
  CHECK_MESSAGE(answer.ok(), s2z::tests::errText(answer));
  CHECK(guest.signalsDelivered == 1);
}

TEST_CASE("an answer lost with the connection arrives after the reconnect; the request is not delivered twice") {
  tests::ScratchDir dir;
  ScriptedGuest guest(dir.path / "agent.sock");
  guest.listen();
  GuestChannel channel(serialPort(dir.path / "agent.sock"), nullptr);
  REQUIRE(channel.connect(5s).ok());
  guest.dropOnSignal = true;
  auto waiting = std::async(std::launch::async, [&] { return channel.call(signalRequest(12), 10s); });
  REQUIRE(std::async(std::launch::async, [&] {
            for (int i = 0; i < 200 && channel.connected(); ++i) std::this_thread::sleep_for(10ms);
            return !channel.connected();
          }).get());
  REQUIRE(channel.connect(5s).ok());
  auto answer = waiting.get();
  CHECK_MESSAGE(answer.ok(), s2z::tests::errText(answer));
  CHECK(guest.signalsDelivered == 1);
}

TEST_CASE("the workload's exit is handed over before the guest is acknowledged") {
  tests::ScratchDir dir;
  ScriptedGuest guest(dir.path / "agent.sock");
  guest.listen();
  std::promise<size_t> keptWhenHandled;
  std::atomic<int> handled{0};
  GuestChannel channel(serialPort(dir.path / "agent.sock"), [&](const pb::WorkloadExited& e) {
    CHECK(e.exit_code() == 3);
    if (handled++ == 0) keptWhenHandled.set_value(guest.unacknowledged());
  });
  REQUIRE(channel.connect(5s).ok());
  guest.reportExit(3);
  auto kept = keptWhenHandled.get_future();
  REQUIRE(kept.wait_for(5s) == std::future_status::ready);
  CHECK(kept.get() == 1);  // still kept by the guest while the host records it
  for (int i = 0; i < 200 && guest.unacknowledged() > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(guest.unacknowledged() == 0);
  // A reconnect (a wake) does not report it again.
  REQUIRE(channel.connect(5s).ok());
  std::this_thread::sleep_for(100ms);
  CHECK(handled == 1);
}

TEST_CASE("a restarted plugin's new channel gets the exit the dead one never acknowledged") {
  tests::ScratchDir dir;
  ScriptedGuest guest(dir.path / "agent.sock");
  guest.listen();
  {
    GuestChannel dead(serialPort(dir.path / "agent.sock"), nullptr);
    REQUIRE(dead.connect(5s).ok());
    REQUIRE(dead.call(signalRequest(10), 5s).ok());  // the guest's numbers move on
    dead.disconnect();  // SIGKILL: nothing more is read or acknowledged
  }
  guest.reportExit(5);  // sent to nobody, kept
  std::promise<int> got;
  GuestChannel fresh(serialPort(dir.path / "agent.sock"),
                     [&](const pb::WorkloadExited& e) { got.set_value(e.exit_code()); });
  REQUIRE(fresh.connect(5s).ok());
  auto code = got.get_future();
  REQUIRE(code.wait_for(5s) == std::future_status::ready);
  CHECK(code.get() == 5);
  // And the new session's own requests work.
  CHECK(fresh.call(signalRequest(12), 5s).ok());
}
