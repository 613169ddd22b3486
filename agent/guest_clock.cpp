#include "agent/guest_clock.h"

#include <sys/random.h>
#include <time.h>

#include <cmath>

namespace s2z::agent {
namespace {

double realtimeMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

constexpr int kMaxClockAttempts = 3;
constexpr double kGoodEnoughMs = 2.0;

struct Reading {
  double offsetMs;       // guest minus the host's time at the round trip's middle
  double uncertaintyMs;  // half the round trip
};

Result<Reading> readGuestClock(GuestChannel& channel, std::chrono::milliseconds timeout) {
  pb::Request request;
  request.mutable_get_guest_date_time();
  double sent = realtimeMs();
  auto answer = channel.call(std::move(request), timeout);
  double received = realtimeMs();
  if (!answer.ok()) return answer.error().wrap("read guest clock");
  const auto& t = answer->guest_date_time();
  double guest = static_cast<double>(t.sec()) * 1e3 + static_cast<double>(t.usec()) / 1e3;
  return Reading{guest - (sent + received) / 2, (received - sent) / 2};
}

Result<void> setGuestClock(GuestChannel& channel, double leadMs, std::chrono::milliseconds timeout) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  int64_t usec = now.tv_nsec / 1000 + static_cast<int64_t>(leadMs * 1e3);
  int64_t sec = now.tv_sec + usec / 1'000'000 - (usec < 0 ? 1 : 0);
  usec = ((usec % 1'000'000) + 1'000'000) % 1'000'000;
  pb::Request set;
  set.mutable_set_guest_date_time()->set_sec(sec);
  set.mutable_set_guest_date_time()->set_usec(usec);
  auto done = channel.call(std::move(set), timeout);
  if (!done.ok()) return done.error().wrap("set guest clock");
  return okResult();
}

}  // namespace

Result<ClockCorrection> correctGuestClock(GuestChannel& channel, std::chrono::milliseconds timeout) {
  ClockCorrection out;
  auto before = readGuestClock(channel, timeout);
  if (!before.ok()) return before.error();
  out.offsetBeforeMs = before->offsetMs;

  // The request reaches the guest about half a round trip after we read the
  // clock: send the time it will be then. The first round trips after a
  // restore are the slowest (cold TCG translation cache), so the lead is
  // refined from the error left, a few times at most.
  double leadMs = before->uncertaintyMs;
  Reading after{};
  for (int attempt = 0; attempt < kMaxClockAttempts; ++attempt) {
    S2Z_TRY(setGuestClock(channel, leadMs, timeout), "");
    auto measured = readGuestClock(channel, timeout);
    if (!measured.ok()) return measured.error();
    after = *measured;
    if (std::fabs(after.offsetMs) <= kGoodEnoughMs) break;
    leadMs -= after.offsetMs;
  }

  pb::Request reseed;
  std::string seed(64, '\0');
  if (::getrandom(seed.data(), seed.size(), 0) == static_cast<ssize_t>(seed.size())) {
    reseed.mutable_reseed_random_dev()->set_data(seed);
    auto reseeded = channel.call(std::move(reseed), timeout);
    if (!reseeded.ok()) return reseeded.error().wrap("reseed guest RNG");
  }

  out.errorAfterMs = after.offsetMs;
  out.uncertaintyMs = after.uncertaintyMs;
  return out;
}

}  // namespace s2z::agent
