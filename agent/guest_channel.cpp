#include "agent/guest_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/unix_socket.h"
#include "vmm/hybrid_vsock.h"

namespace s2z::agent {
namespace {

using Clock = std::chrono::steady_clock;

// Until the guest has opened its port, QEMU leaves what we write unread (or
// drops it, after a restore): Hello is repeated until it is answered, soon
// at first (a restored guest answers within milliseconds), then less often
// (a booting one takes seconds).
constexpr std::chrono::milliseconds kFirstHelloRetry{5};
constexpr std::chrono::milliseconds kMaxHelloRetry{500};

// Non-zero and random: host sessions, and exec ids that must not collide
// with those of an earlier plugin process the guest may still report on.
uint64_t randomId() {
  uint64_t v = 0;
  while (v == 0) {
    if (::getrandom(&v, sizeof v, 0) != sizeof v) v = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  }
  return v;
}

// Through a multiplexer the guest's accept is the answer, so it comes as
// fast as the guest runs; a booting guest that does not listen yet closes
// the stream at once (the caller tries again).
constexpr std::chrono::milliseconds kVsockReplyTimeout{1000};

Result<UniqueFd> connectOnce(const ChannelAddress& address) {
  if (!address.vsockPort) return connectUnix(address.socket);
  return vmm::connectHybridVsock(address.socket, *address.vsockPort, kVsockReplyTimeout);
}

}  // namespace

GuestChannel::GuestChannel(ChannelAddress address, ExitHandler onExit, OutputHandler onOutput)
    : address_(std::move(address)),
      onExit_(std::move(onExit)),
      onOutput_(std::move(onOutput)),
      sessionId_(randomId()) {}

GuestChannel::~GuestChannel() { disconnect(); }

bool GuestChannel::connected() const {
  std::lock_guard lock(mutex_);
  return alive_;
}

void GuestChannel::writeLocked(const pb::Frame& frame) {
  if (!alive_) return;  // kept frames go out at the next connect
  std::string bytes = guestlink::encodeFrame(frame);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // The VMM went away; the reader sees the same and ends.
      ::shutdown(fd_.get(), SHUT_RDWR);
      alive_ = false;
      return;
    }
    done += static_cast<size_t>(n);
  }
}

Result<void> GuestChannel::open(std::chrono::milliseconds timeout) {
  if (connected()) return okResult();
  disconnect();
  auto deadline = Clock::now() + timeout;
  Result<UniqueFd> fd = makeError(ErrorCode::kTimeout, "not tried");
  while (true) {
    fd = connectOnce(address_);
    if (fd.ok() || Clock::now() >= deadline) break;
    // The VMM creates its socket shortly after it starts; a vsock port is
    // there once the booting agent listens on it.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!fd.ok()) return fd.error().wrap("guest agent channel");
  int raw = fd->get();
  std::lock_guard lock(mutex_);
  fd_ = std::move(*fd);
  alive_ = true;
  hello_.reset();
  reader_ = std::thread([this, raw] { readLoop(raw); });
  return okResult();
}

Result<pb::HelloReply> GuestChannel::connect(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  S2Z_TRY(open(timeout), "");
  std::unique_lock lock(mutex_);
  hello_.reset();
  pb::Frame hello;
  hello.mutable_hello()->set_protocol_version(guestlink::kProtocolVersion);
  hello.mutable_hello()->set_session(sessionId_);
  auto retry = kFirstHelloRetry;
  while (!hello_) {
    if (!alive_) return makeError(ErrorCode::kUnavailable, "guest agent channel closed during Hello");
    writeLocked(session_.unsequenced(hello));
    auto wakeAt = std::min(deadline, Clock::now() + retry);
    retry = std::min(retry * 2, kMaxHelloRetry);
    cv_.wait_until(lock, wakeAt, [this] { return hello_.has_value() || !alive_; });
    if (!hello_ && Clock::now() >= deadline) {
      return makeError(ErrorCode::kTimeout, "the guest agent did not answer within " +
                                                std::to_string(timeout.count()) + " ms");
    }
  }
  if (!hello_->error().empty()) {
    return makeError(ErrorCode::kFailedPrecondition, "guest agent: " + hello_->error());
  }
  return *hello_;
}

void GuestChannel::disconnect() {
  std::thread reader;
  {
    std::lock_guard lock(mutex_);
    if (fd_) ::shutdown(fd_.get(), SHUT_RDWR);
    reader = std::move(reader_);
  }
  if (reader.joinable()) reader.join();
  std::lock_guard lock(mutex_);
  fd_.reset();
  alive_ = false;
  cv_.notify_all();
}

void GuestChannel::startNewSession(const std::string& why) {
  disconnect();
  std::lock_guard lock(mutex_);
  for (auto& [id, stream] : execs_) stream->abandon(why);
  execs_.clear();
  session_.restart();
  sessionId_ = randomId();
  hello_.reset();
  responses_.clear();
  posted_.clear();
  abandonedBefore_ = nextRequestId_;
  cv_.notify_all();
}

void GuestChannel::readLoop(int fd) {
  guestlink::FrameDecoder decoder;
  char buf[16384];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder.feed(buf, static_cast<size_t>(n));
    while (auto frame = decoder.next()) handle(*frame);
    if (!decoder.error().empty()) {
      spdlog::warn("guest channel {}: {}; dropping the connection", address_.socket.string(),
                   decoder.error());
      break;
    }
    std::lock_guard lock(mutex_);
    if (session_.ackOwed()) {
      session_.ackSent();
      writeLocked(session_.unsequenced(pb::Frame{}));
    }
  }
  std::lock_guard lock(mutex_);
  // fd_ stays owned (disconnect closes it) but is marked dead for writers.
  if (fd_.get() == fd) {
    ::shutdown(fd, SHUT_RDWR);
    alive_ = false;
  }
  hello_.reset();
  cv_.notify_all();
}

void GuestChannel::handle(const pb::Frame& frame) {
  std::unique_lock lock(mutex_);
  if (!session_.receive(frame)) return;  // a duplicate, or after a gap
  switch (frame.body_case()) {
    case pb::Frame::kHelloReply:
      // Where the guest's numbers are (this process may be new to them)...
      session_.expectFrom(frame.hello_reply().next_seq());
      // ...and it has what it acknowledged: send the rest again.
      for (const pb::Frame& again : session_.resendAfter(frame.ack())) writeLocked(again);
      hello_ = frame.hello_reply();
      cv_.notify_all();
      break;
    case pb::Frame::kResponse:
      if (posted_.erase(frame.response().id())) {
        if (!frame.response().error().empty()) {
          spdlog::debug("guest channel {}: {}", address_.socket.string(), frame.response().error());
        }
        break;
      }
      responses_[frame.response().id()] = frame.response();
      cv_.notify_all();
      break;
    case pb::Frame::kEvent:
      if (frame.event().has_workload_exited() && onExit_) {
        lock.unlock();
        onExit_(frame.event().workload_exited());
      } else if (frame.event().has_workload_output()) {
        lock.unlock();
        if (onOutput_) onOutput_(frame.event().workload_output());
      } else {
        routeExecEvent(frame.event());
      }
      break;
    default:
      break;  // a pure acknowledgement
  }
}

void GuestChannel::routeExecEvent(const pb::Event& event) {
  uint64_t id = event.has_exec_output() ? event.exec_output().exec_id()
                : event.has_exec_exited() ? event.exec_exited().exec_id()
                                          : 0;
  auto it = execs_.find(id);
  if (it == execs_.end()) return;  // a session already closed (or another process's)
  ExecEvent out;
  if (event.has_exec_output()) {
    const auto& o = event.exec_output();
    out.kind = o.stream() == pb::ExecOutput::STDERR ? ExecEvent::Kind::kStderr : ExecEvent::Kind::kStdout;
    out.data = o.data();
    out.eof = o.eof();
  } else {
    out.kind = ExecEvent::Kind::kExited;
    out.exitCode = event.exec_exited().exit_code();
    out.signal = event.exec_exited().signal();
  }
  it->second->push(std::move(out));
}

void GuestChannel::post(pb::Request request) {
  std::lock_guard lock(mutex_);
  uint64_t id = nextRequestId_++;
  request.set_id(id);
  posted_.insert(id);
  pb::Frame frame;
  *frame.mutable_request() = std::move(request);
  writeLocked(session_.send(std::move(frame)));
}

std::pair<uint64_t, std::shared_ptr<ExecStream>> GuestChannel::openExec() {
  std::lock_guard lock(mutex_);
  uint64_t id = randomId();
  while (execs_.count(id)) id = randomId();
  auto stream = std::make_shared<ExecStream>();
  execs_[id] = stream;
  return {id, stream};
}

void GuestChannel::closeExec(uint64_t execId) {
  std::lock_guard lock(mutex_);
  execs_.erase(execId);
}

void GuestChannel::abandonExecs(const std::string& why) {
  std::lock_guard lock(mutex_);
  for (auto& [id, stream] : execs_) stream->abandon(why);
}

Result<pb::Response> GuestChannel::call(pb::Request request, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  uint64_t id = nextRequestId_++;
  request.set_id(id);
  pb::Frame frame;
  *frame.mutable_request() = std::move(request);
  writeLocked(session_.send(std::move(frame)));
  bool answered = cv_.wait_for(lock, timeout, [&] { return responses_.count(id) > 0 || id < abandonedBefore_; });
  if (answered && id < abandonedBefore_) {
    return makeError(ErrorCode::kUnavailable, "the guest agent was replaced (cold boot) before it answered");
  }
  if (!answered) {
    return makeError(ErrorCode::kTimeout, "the guest agent did not answer within " +
                                              std::to_string(timeout.count()) + " ms");
  }
  pb::Response response = std::move(responses_[id]);
  responses_.erase(id);
  if (!response.error().empty()) return makeError(ErrorCode::kFailedPrecondition, response.error());
  return response;
}

}  // namespace s2z::agent
