#include "agent/serial_worker.h"

namespace s2z::agent {

SerialWorker::~SerialWorker() { stop(); }

void SerialWorker::post(std::function<void()> job) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  jobs_.push_back(std::move(job));
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  cv_.notify_one();
}

void SerialWorker::stop() {
  std::thread joining;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
    joining = std::move(thread_);
  }
  cv_.notify_all();
  if (joining.joinable()) joining.join();
}

void SerialWorker::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

}  // namespace s2z::agent
