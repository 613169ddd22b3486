// Fan-out of task events (instance "Sleeping", "Woken", ...) to every open
// TaskEvents stream. Each subscriber has its own bounded queue, so a slow
// stream never blocks the publisher (an instance's agent thread) and never
// delays another stream. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace s2z::driver {

struct DriverEvent {
  std::string taskId, allocId, taskName;
  std::string message;
  std::map<std::string, std::string> annotations;
  std::chrono::system_clock::time_point time;
};

class EventBus {
 public:
  // Per-subscriber queue capacity; beyond it the oldest event is dropped
  // (and counted), since a stuck stream must not grow memory without bound.
  static constexpr size_t kQueueCapacity = 1024;

  class Subscription {
   public:
    virtual ~Subscription() = default;
    // Waits up to timeout for the next event; nullopt on timeout.
    virtual std::optional<DriverEvent> next(std::chrono::milliseconds timeout) = 0;
    // Events dropped because this subscriber's queue was full.
    virtual size_t dropped() const = 0;
  };

  EventBus();
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // Adds a subscriber; it sees events published from now on. Destroying the
  // subscription unsubscribes. Subscriptions may outlive the bus.
  std::unique_ptr<Subscription> subscribe();
  // Queues event for every current subscriber. Events published while
  // nobody listens are dropped (Nomad opens TaskEvents before any task).
  void publish(const DriverEvent& event);
  size_t subscribers() const;

  struct State;  // implementation detail (event_bus.cpp), shared with subscriptions

 private:
  std::shared_ptr<State> state_;
};

}  // namespace s2z::driver
