// Threads running long gRPC calls (streams, WaitTask) for one plugin
// instance, with a way to cancel them all and join: the client contexts are
// registered here so stop() can TryCancel whatever is in flight.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace grpc {
class ClientContext;
}

namespace s2z::standin {

class BackgroundCalls {
 public:
  BackgroundCalls() = default;
  ~BackgroundCalls() { stop(); }
  BackgroundCalls(const BackgroundCalls&) = delete;
  BackgroundCalls& operator=(const BackgroundCalls&) = delete;

  // A fresh context registered for cancellation; null once stop() began.
  std::shared_ptr<grpc::ClientContext> newContext();
  bool stopping() const { return stopping_.load(); }
  // Sleeps up to `d`; returns false (early) if stop() was called.
  bool sleepFor(std::chrono::milliseconds d);
  // Runs `fn` on a new thread owned by this object.
  void spawn(std::function<void()> fn);
  // Cancels every registered context and joins every thread. Idempotent.
  void stop();

 private:
  std::mutex mu_;  // guards contexts_ and threads_
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};
  std::vector<std::weak_ptr<grpc::ClientContext>> contexts_;
  std::vector<std::thread> threads_;
};

}  // namespace s2z::standin
