// One thread per owner that runs posted jobs in order, so an instance's long
// operations (sleep, wake) leave the agent's loop thread free for others.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace s2z::agent {

class SerialWorker {
 public:
  SerialWorker() = default;
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;
  // stop().
  ~SerialWorker();

  // Queues job; the thread starts at the first post. Ignored after stop().
  // Any thread.
  void post(std::function<void()> job);

  // Drops queued jobs, waits for the running one and joins the thread.
  // Idempotent. Must not be called from a job.
  void stop();

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mutex_
  bool stopping_ = false;                   // guarded by mutex_
  std::thread thread_;                      // started and joined under mutex_/stop()
};

}  // namespace s2z::agent
