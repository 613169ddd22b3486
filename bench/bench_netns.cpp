#include "bench/bench_netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

namespace s2z::bench {

Result<std::unique_ptr<BenchNetns>> BenchNetns::enter() {
  std::string name = "s2zt-bench-" + std::to_string(::getpid());
  UniqueFd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original) return systemError("open own netns");
  if (std::system(("ip netns add " + name).c_str()) != 0)
    return makeError(ErrorCode::kSystem, "ip netns add " + name + " failed");
  std::unique_ptr<BenchNetns> ns(new BenchNetns(name, std::move(original)));
  UniqueFd target(::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!target) return systemError("open netns " + name);
  if (::setns(target.get(), CLONE_NEWNET) < 0) return systemError("setns " + name);
  if (std::system("ip link set lo up") != 0)
    return makeError(ErrorCode::kSystem, "ip link set lo up failed in " + name);
  return ns;
}

BenchNetns::~BenchNetns() {
  ::setns(original_.get(), CLONE_NEWNET);
  (void)!std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
}

}  // namespace s2z::bench
