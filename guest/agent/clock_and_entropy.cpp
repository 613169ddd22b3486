#include "guest/agent/clock_and_entropy.h"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <time.h>

#include <cstring>
#include <vector>

#include "common/unique_fd.h"

namespace s2z::guest {

Result<void> setWallClock(int64_t sec, int64_t usec) {
  if (usec < 0 || usec >= 1000000) {
    return makeError(ErrorCode::kInvalidArgument, "set time: usec " + std::to_string(usec) + " out of range");
  }
  timespec ts{static_cast<time_t>(sec), static_cast<long>(usec * 1000)};
  if (::clock_settime(CLOCK_REALTIME, &ts) != 0) return systemError("set time");
  return okResult();
}

WallClock wallClock() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return WallClock{ts.tv_sec, ts.tv_nsec / 1000};
}

Result<void> addEntropy(const std::string& data) {
  if (data.empty()) return okResult();
  UniqueFd fd(::open("/dev/random", O_WRONLY | O_CLOEXEC));
  if (!fd) return systemError("reseed: open /dev/random");
  // struct rand_pool_info ends in a flexible array: build it in a buffer.
  std::vector<char> buffer(sizeof(rand_pool_info) + data.size());
  auto* info = reinterpret_cast<rand_pool_info*>(buffer.data());
  info->entropy_count = static_cast<int>(data.size() * 8);
  info->buf_size = static_cast<int>(data.size());
  std::memcpy(info->buf, data.data(), data.size());
  if (::ioctl(fd.get(), RNDADDENTROPY, info) != 0) return systemError("reseed: RNDADDENTROPY");
  return okResult();
}

}  // namespace s2z::guest
