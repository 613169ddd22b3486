#include "agent/agent_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <spdlog/spdlog.h>

namespace s2z::agent {
namespace {

// epoll data for the two fixed fds; instance keys are pointer values.
constexpr uint64_t kKickKey = 1;
constexpr uint64_t kWakeKey = 2;

}  // namespace

Result<std::unique_ptr<AgentLoop>> AgentLoop::start(bpf::ScaleToZeroKernel* kernel,
                                                    std::chrono::milliseconds interval,
                                                    InstanceList instances) {
  UniqueFd epollFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epollFd) return systemError("agent loop: epoll_create1");
  UniqueFd kickFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!kickFd) return systemError("agent loop: eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kKickKey;
  if (::epoll_ctl(epollFd.get(), EPOLL_CTL_ADD, kickFd.get(), &ev) != 0) {
    return systemError("agent loop: watch kick fd");
  }
  if (kernel && kernel->wakeEventFd() >= 0) {
    ev.data.u64 = kWakeKey;
    if (::epoll_ctl(epollFd.get(), EPOLL_CTL_ADD, kernel->wakeEventFd(), &ev) != 0) {
      return systemError("agent loop: watch wake events");
    }
  }
  std::unique_ptr<AgentLoop> loop(new AgentLoop(kernel, interval, std::move(instances),
                                                std::move(epollFd), std::move(kickFd)));
  loop->thread_ = std::thread([raw = loop.get()] { raw->run(); });
  return loop;
}

AgentLoop::AgentLoop(bpf::ScaleToZeroKernel* kernel, std::chrono::milliseconds interval,
                     InstanceList instances, UniqueFd epollFd, UniqueFd kickFd)
    : kernel_(kernel),
      interval_(interval.count() > 0 ? interval : std::chrono::milliseconds(100)),
      instances_(std::move(instances)),
      epollFd_(std::move(epollFd)),
      kickFd_(std::move(kickFd)) {}

AgentLoop::~AgentLoop() {
  stop_ = true;
  kick();
  if (thread_.joinable()) thread_.join();
}

void AgentLoop::kick() {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop wakes anyway.
  (void)!::write(kickFd_.get(), &one, sizeof one);
}

void AgentLoop::unwatch(Watch& w) {
  if (w.fd) ::epoll_ctl(epollFd_.get(), EPOLL_CTL_DEL, w.fd.get(), nullptr);
  w.fd.reset();
}

void AgentLoop::syncWatches(const std::vector<std::shared_ptr<VmInstance>>& instances) {
  std::map<const VmInstance*, Watch> next;
  for (const auto& instance : instances) {
    auto old = watches_.find(instance.get());
    bool known = old != watches_.end();
    if (known && old->second.generation == instance->watchGeneration()) {
      next[instance.get()] = std::move(old->second);
      continue;
    }
    auto dup = instance->dupExitFd();
    if (!dup) {
      // Busy: keep what we have; the operation kicks us when it ends.
      if (known) next[instance.get()] = std::move(old->second);
      else next[instance.get()] = Watch{instance, UniqueFd(), 0};
      continue;
    }
    if (known) unwatch(old->second);
    Watch w{instance, std::move(dup->first), dup->second};
    if (w.fd) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = reinterpret_cast<uint64_t>(instance.get());
      if (::epoll_ctl(epollFd_.get(), EPOLL_CTL_ADD, w.fd.get(), &ev) != 0) {
        spdlog::warn("agent loop: watch exit fd of {}: {}", instance->taskId(),
                     std::strerror(errno));
        w.fd.reset();
      }
    }
    next[instance.get()] = std::move(w);
  }
  for (auto& [ptr, w] : watches_) {
    if (!next.count(ptr)) unwatch(w);
  }
  watches_ = std::move(next);
}

void AgentLoop::handleExit(const std::vector<std::shared_ptr<VmInstance>>& instances,
                           uint64_t key) {
  for (const auto& instance : instances) {
    if (reinterpret_cast<uint64_t>(instance.get()) != key) continue;
    if (instance->handleVmmExit() == LoopCall::kBusy) {
      // Level-triggered: stop watching until the running operation ends
      // (it changes the generation and kicks), or this would spin.
      unwatch(watches_[instance.get()]);
    }
    return;
  }
}

void AgentLoop::drainWakeEvents() {
  if (!kernel_) return;
  for (const auto& event : kernel_->drainWakeEvents()) {
    auto [it, inserted] = pendingWakes_.emplace(event.ifindex, event);
    if (!inserted && event.timestampNs < it->second.timestampNs) it->second = event;
  }
}

void AgentLoop::dispatchWakes(const std::vector<std::shared_ptr<VmInstance>>& instances) {
  for (auto it = pendingWakes_.begin(); it != pendingWakes_.end();) {
    std::shared_ptr<VmInstance> target;
    for (const auto& instance : instances) {
      if (instance->ifindex() == it->first) target = instance;
    }
    if (!target) {
      spdlog::debug("agent loop: wake event for unknown ifindex {}", it->first);
      it = pendingWakes_.erase(it);
      continue;
    }
    if (target->handleWakeEvent(it->second) == LoopCall::kBusy) {
      ++it;
    } else {
      it = pendingWakes_.erase(it);
    }
  }
}

void AgentLoop::run() {
  auto nextIdleCheck = std::chrono::steady_clock::now();
  epoll_event events[16];
  while (!stop_) {
    auto instances = instances_();
    syncWatches(instances);
    auto now = std::chrono::steady_clock::now();
    int timeoutMs = 0;
    if (nextIdleCheck > now) {
      timeoutMs = static_cast<int>(
          std::chrono::ceil<std::chrono::milliseconds>(nextIdleCheck - now).count());
    }
    int n = ::epoll_wait(epollFd_.get(), events, 16, timeoutMs);
    if (n < 0 && errno != EINTR) {
      spdlog::error("agent loop: epoll_wait: {}", std::strerror(errno));
      std::this_thread::sleep_for(interval_);
      continue;
    }
    if (stop_) break;
    // Fresh list: an instance added while we waited (start, recover) must
    // get the wake event that may have come with the kick.
    instances = instances_();
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == kKickKey) {
        uint64_t count;
        (void)!::read(kickFd_.get(), &count, sizeof count);
      } else if (key == kWakeKey) {
        drainWakeEvents();
      } else {
        handleExit(instances, key);
      }
    }
    // Wakes first: a request is waiting on them.
    dispatchWakes(instances);
    if (std::chrono::steady_clock::now() >= nextIdleCheck) {
      nextIdleCheck = std::chrono::steady_clock::now() + interval_;
      uint64_t nowNs = monotonicNowNs();
      for (const auto& instance : instances) instance->checkIdle(nowNs);
    }
  }
}

}  // namespace s2z::agent
