#include "driver/event_bus.h"

#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>

namespace s2z::driver {

struct EventBus::State {
  // One subscriber's events. Nested, not in an anonymous namespace: State
  // is declared in the header, so its members' types need linkage too.
  struct Queue {
    std::mutex mu;                 // guards events, dropped
    std::condition_variable cv;
    std::deque<DriverEvent> events;
    size_t dropped = 0;
  };
  mutable std::mutex mu;  // guards queues
  std::list<std::shared_ptr<Queue>> queues;
};

namespace {

using Queue = EventBus::State::Queue;

class SubscriptionImpl final : public EventBus::Subscription {
 public:
  SubscriptionImpl(std::shared_ptr<EventBus::State> state, std::shared_ptr<Queue> queue)
      : state_(std::move(state)), queue_(std::move(queue)) {}
  ~SubscriptionImpl() override;

  std::optional<DriverEvent> next(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(queue_->mu);
    if (!queue_->cv.wait_for(lock, timeout, [&] { return !queue_->events.empty(); })) {
      return std::nullopt;
    }
    DriverEvent event = std::move(queue_->events.front());
    queue_->events.pop_front();
    return event;
  }

  size_t dropped() const override {
    std::lock_guard lock(queue_->mu);
    return queue_->dropped;
  }

 private:
  std::shared_ptr<EventBus::State> state_;
  std::shared_ptr<Queue> queue_;
};

}  // namespace

// Defined out of line: needs EventBus::State complete.
SubscriptionImpl::~SubscriptionImpl() {
  std::lock_guard lock(state_->mu);
  state_->queues.remove(queue_);
}

EventBus::EventBus() : state_(std::make_shared<State>()) {}
EventBus::~EventBus() = default;

std::unique_ptr<EventBus::Subscription> EventBus::subscribe() {
  auto queue = std::make_shared<Queue>();
  {
    std::lock_guard lock(state_->mu);
    state_->queues.push_back(queue);
  }
  return std::make_unique<SubscriptionImpl>(state_, std::move(queue));
}

void EventBus::publish(const DriverEvent& event) {
  std::lock_guard lock(state_->mu);
  for (const auto& queue : state_->queues) {
    {
      std::lock_guard qlock(queue->mu);
      if (queue->events.size() >= kQueueCapacity) {
        queue->events.pop_front();
        ++queue->dropped;
      }
      queue->events.push_back(event);
    }
    queue->cv.notify_one();
  }
}

size_t EventBus::subscribers() const {
  std::lock_guard lock(state_->mu);
  return state_->queues.size();
}

}  // namespace s2z::driver
