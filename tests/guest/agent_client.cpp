#include "tests/guest/agent_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <thread>

namespace s2z::guest::testing {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

pb::HelloReply AgentClient::connect(uint64_t session, milliseconds timeout, uint32_t version, int hellos) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      fd_ = std::move(fd);
      break;
    }
    if (Clock::now() > deadline) throw std::runtime_error("cannot connect to " + socket_.string());
    std::this_thread::sleep_for(20ms);
  }
  decoder_.reset();
  pb::Frame hello;
  hello.mutable_hello()->set_protocol_version(version);
  hello.mutable_hello()->set_session(session);
  std::string bytes;
  for (int i = 0; i < hellos; ++i) bytes += guestlink::encodeFrame(session_.unsequenced(hello));
  writeBytes(bytes);
  for (;;) {
    auto frame = readFrame(deadline);
    if (!frame) throw std::runtime_error("no HelloReply");
    // A guest that did not notice the reconnect (it was quick) may send a
    // frame on the new connection before it reads the Hello: keep it.
    if (!session_.receive(*frame)) continue;
    if (frame->seq() != 0) {
      delivered_.push_back(*frame);
      unclaimed_.push_back(*frame);
      continue;
    }
    if (frame->has_hello_reply()) {
      if (frame->hello_reply().error().empty()) {
        for (const auto& again : session_.resendAfter(frame->ack())) write(again);
      }
      return frame->hello_reply();
    }
  }
}

uint64_t AgentClient::send(pb::Request request) {
  uint64_t id = nextId_++;
  request.set_id(id);
  pb::Frame frame;
  *frame.mutable_request() = std::move(request);
  write(session_.send(frame));
  return id;
}

pb::Response AgentClient::call(pb::Request request, milliseconds timeout) {
  return waitResponse(send(std::move(request)), timeout);
}

pb::Response AgentClient::waitResponse(uint64_t id, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    for (auto it = unclaimed_.begin(); it != unclaimed_.end(); ++it) {
      if (it->has_response() && it->response().id() == id) {
        pb::Response r = it->response();
        unclaimed_.erase(it);
        return r;
      }
    }
    auto frame = nextDelivered(deadline);
    if (!frame) throw std::runtime_error("no Response for request " + std::to_string(id));
    unclaimed_.push_back(*frame);
  }
}

pb::Event AgentClient::waitEvent(milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    for (auto it = unclaimed_.begin(); it != unclaimed_.end(); ++it) {
      if (it->has_event()) {
        pb::Event e = it->event();
        unclaimed_.erase(it);
        return e;
      }
    }
    auto frame = nextDelivered(deadline);
    if (!frame) throw std::runtime_error("no Event");
    unclaimed_.push_back(*frame);
  }
}

void AgentClient::ack() {
  write(session_.unsequenced(pb::Frame()));
  session_.ackSent();
}

void AgentClient::write(const pb::Frame& frame) { writeBytes(guestlink::encodeFrame(frame)); }

void AgentClient::writeBytes(const std::string& bytes) {
  if (!fd_) return;  // disconnected: the session keeps sequenced frames
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("write to agent socket: " + std::string(std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
}

std::optional<pb::Frame> AgentClient::readFrame(Clock::time_point deadline) {
  for (;;) {
    if (auto frame = decoder_.next()) {
      if (frame->has_hello_reply()) ++helloReplies_;
      return frame;
    }
    if (!decoder_.error().empty()) throw std::runtime_error("channel: " + decoder_.error());
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || !fd_) return std::nullopt;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n == 0) throw std::runtime_error("agent socket closed by QEMU");
    if (n < 0 && errno != EINTR) throw std::runtime_error("read agent socket: " + std::string(std::strerror(errno)));
    if (n > 0) decoder_.feed(buf, static_cast<size_t>(n));
  }
}

std::optional<pb::Frame> AgentClient::nextDelivered(Clock::time_point deadline) {
  for (;;) {
    auto frame = readFrame(deadline);
    if (!frame) return std::nullopt;
    if (!session_.receive(*frame) || frame->seq() == 0) continue;  // duplicates, acks, HelloReply
    delivered_.push_back(*frame);
    return frame;
  }
}

pb::Request startWorkload(std::vector<std::string> argv, std::string user, std::string workingDir,
                          std::vector<std::string> env) {
  pb::Request r;
  auto* s = r.mutable_start_workload();
  for (auto& a : argv) s->add_argv(a);
  for (auto& e : env) s->add_env(e);
  s->set_user(user);
  s->set_working_dir(workingDir);
  s->set_hostname("agent-test");
  return r;
}

pb::Request signalProcess(int signo) {
  pb::Request r;
  r.mutable_signal_process()->set_signal(signo);
  return r;
}

}  // namespace s2z::guest::testing
