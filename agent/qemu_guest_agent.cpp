#include "agent/qemu_guest_agent.h"

#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cmath>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/clock_setting_policy.h"
#include "common/unix_socket.h"

namespace s2z::agent {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kSyncRetry{100};
constexpr char kDelimiter = '\xff';

int64_t realtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class QgaConnection {
 public:
  QgaConnection(UniqueFd fd, Clock::time_point deadline) : fd_(std::move(fd)), deadline_(deadline) {}

  Result<void> send(const std::string& bytes) {
    if (::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
      return systemError("qemu-guest-agent: send");
    }
    return okResult();
  }

  // The next reply line, or nullopt when `until` passed first.
  Result<std::optional<std::string>> readLine(Clock::time_point until) {
    for (;;) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return std::optional<std::string>(line);
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(std::min(until, deadline_) - Clock::now());
      if (left.count() <= 0) return std::optional<std::string>();
      pollfd p{fd_.get(), POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) continue;
      char chunk[4096];
      ssize_t got = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      if (got <= 0) return makeError(ErrorCode::kUnavailable, "qemu-guest-agent: the channel closed");
      buffer_.append(chunk, static_cast<size_t>(got));
    }
  }

  // guest-sync-delimited until qga echoes our id (it may first answer
  // commands of an earlier connection, or not be running yet). Only the
  // first try starts with 0xFF: qga answers each 0xFF outside a command
  // with a parse error line, which execute() then skips by id.
  Result<void> sync() {
    uint64_t id = 0;
    ::getrandom(&id, sizeof id, 0);
    id &= 0x7fffffff;  // qga's id is an int
    bool first = true;
    while (Clock::now() < deadline_) {
      json cmd = {{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}};
      S2Z_TRY(send((first ? std::string(1, kDelimiter) : std::string()) + cmd.dump() + "\n"), "");
      first = false;
      auto until = Clock::now() + kSyncRetry;
      for (;;) {
        auto line = readLine(until);
        if (!line.ok()) return line.error();
        if (!*line) break;  // resend
        std::string text = **line;
        size_t at = text.rfind(kDelimiter);
        if (at != std::string::npos) text.erase(0, at + 1);
        json reply = json::parse(text, nullptr, false);
        if (reply.is_object() && reply.contains("return") && reply["return"] == id) return okResult();
      }
    }
    return makeError(ErrorCode::kTimeout, "no qemu-guest-agent answered");
  }

  // One command after sync: its "return", or its "error" as an error.
  // Replies are matched by the "id" qga echoes; others (a repeated sync's,
  // errors about stray bytes) are skipped.
  Result<json> execute(json cmd) {
    const std::string name = cmd["execute"].get<std::string>();
    const uint64_t id = ++lastId_;
    cmd["id"] = id;
    S2Z_TRY(send(cmd.dump() + "\n"), "");
    for (;;) {
      auto line = readLine(deadline_);
      if (!line.ok()) return line.error();
      if (!*line) return makeError(ErrorCode::kTimeout, "qemu-guest-agent: no reply to " + name);
      json reply = json::parse(**line, nullptr, false);
      if (!reply.is_object() || !reply.contains("id") || reply["id"] != id) continue;
      if (reply.contains("return")) return reply["return"];
      std::string why = reply.contains("error") ? reply["error"].dump() : **line;
      return makeError(ErrorCode::kFailedPrecondition, "qemu-guest-agent: " + name + ": " + why);
    }
  }

  struct GuestTime {
    int64_t guestNs;
    int64_t hostMiddleNs;  // the host's time halfway through the round trip
    int64_t halfTripNs;
  };
  Result<GuestTime> guestTime() {
    int64_t sent = realtimeNs();
    auto t = execute({{"execute", "guest-get-time"}});
    int64_t received = realtimeNs();
    if (!t.ok()) return t.error();
    if (!t->is_number_integer()) return makeError(ErrorCode::kInternal, "qemu-guest-agent: guest-get-time: not a number");
    return GuestTime{t->get<int64_t>(), sent + (received - sent) / 2, (received - sent) / 2};
  }

 private:
  UniqueFd fd_;
  Clock::time_point deadline_;
  std::string buffer_;
  uint64_t lastId_ = 0;
};

}  // namespace

Result<ClockCorrection> correctClockWithQemuGuestAgent(const std::filesystem::path& socket,
                                                       std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto fd = connectUnix(socket);
  if (!fd.ok()) return fd.error().wrap("qemu-guest-agent");
  QgaConnection qga(std::move(*fd), deadline);
  S2Z_TRY(qga.sync(), "");
  auto before = qga.guestTime();
  if (!before.ok()) return before.error();
  ClockCorrection out;
  out.offsetBeforeMs = static_cast<double>(before->guestNs - before->hostMiddleNs) / 1e6;
  // Aimed at when the command arrives (half a round trip later), then
  // corrected by the error measured, as for our own agent (guest_clock.h).
  // The hwclock step may fail after the clock was set: guest-get-time judges.
  int64_t leadNs = before->halfTripNs;
  Result<json> set = json();
  for (int attempt = 0; attempt < kClockSetAttempts; ++attempt) {
    int64_t sent = realtimeNs();
    set = qga.execute({{"execute", "guest-set-time"}, {"arguments", {{"time", sent + leadNs}}}});
    auto after = qga.guestTime();
    if (!after.ok()) return after.error();
    int64_t errorNs = after->guestNs - after->hostMiddleNs;
    out.errorAfterMs = static_cast<double>(errorNs) / 1e6;
    out.uncertaintyMs = static_cast<double>(after->halfTripNs) / 1e6;
    if (std::fabs(out.errorAfterMs) <= kClockGoodEnoughMs) break;
    leadNs -= errorNs;
  }
  if (std::fabs(out.errorAfterMs) > 100 && std::fabs(out.errorAfterMs) > std::fabs(out.offsetBeforeMs) / 2) {
    return makeError(ErrorCode::kFailedPrecondition,
                     "qemu-guest-agent: the clock did not move" +
                         (set.ok() ? std::string() : " (" + set.error().describe() + ")"));
  }
  return out;
}

}  // namespace s2z::agent
