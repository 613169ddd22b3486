#include "agent/guest_clock.h"

#include <sys/random.h>
#include <time.h>

#include <cmath>

#include "agent/clock_setting_policy.h"

namespace s2z::agent {
namespace {

double realtimeMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double toMs(const pb::GuestDateTime& t) {
  return static_cast<double>(t.sec()) * 1e3 + static_cast<double>(t.usec()) / 1e3;
}

struct Setting {
  double lagMs;          // guest minus host before the setting
  double errorMs;        // guest minus host right after it
  double halfTripMs;     // half the round trip: the uncertainty of both
};

// Sets the guest's clock to the host's plus leadMs (the time the request
// takes to arrive), in one round trip that also reads it before and after.
Result<Setting> setGuestClock(GuestChannel& channel, double leadMs,
                              std::chrono::milliseconds timeout) {
  double sent = realtimeMs();
  double target = sent + leadMs;
  int64_t targetUs = std::llround(target * 1e3);
  pb::Request set;
  set.mutable_set_guest_date_time()->set_sec(targetUs / 1'000'000);
  set.mutable_set_guest_date_time()->set_usec(targetUs % 1'000'000);
  auto done = channel.call(std::move(set), timeout);
  double received = realtimeMs();
  if (!done.ok()) return done.error().wrap("set guest clock");
  double middle = (sent + received) / 2;
  const auto& r = done->set_guest_date_time();
  return Setting{toMs(r.before()) - middle, toMs(r.after()) - middle, (received - sent) / 2};
}

}  // namespace

Result<ClockCorrection> correctGuestClock(GuestChannel& channel, std::chrono::milliseconds timeout) {
  ClockCorrection out;
  double leadMs = 0;
  for (int attempt = 0; attempt < kClockSetAttempts; ++attempt) {
    auto setting = setGuestClock(channel, leadMs, timeout);
    if (!setting.ok()) return setting.error();
    if (attempt == 0) out.offsetBeforeMs = setting->lagMs;
    out.errorAfterMs = setting->errorMs;
    out.uncertaintyMs = setting->halfTripMs;
    if (std::fabs(setting->errorMs) <= kClockGoodEnoughMs) break;
    leadMs -= setting->errorMs;
  }
  return out;
}

Result<void> reseedGuestRng(GuestChannel& channel, std::chrono::milliseconds timeout) {
  std::string seed(64, '\0');
  if (::getrandom(seed.data(), seed.size(), 0) != static_cast<ssize_t>(seed.size())) {
    return systemError("reseed guest RNG: getrandom");
  }
  pb::Request reseed;
  reseed.mutable_reseed_random_dev()->set_data(seed);
  auto reseeded = channel.call(std::move(reseed), timeout);
  if (!reseeded.ok()) return reseeded.error().wrap("reseed guest RNG");
  return okResult();
}

}  // namespace s2z::agent
