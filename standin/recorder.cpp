#include "standin/recorder.h"

#include <algorithm>

namespace s2z::standin {

void Recorder::addFingerprint(FingerprintRecord r) {
  std::lock_guard lock(mu_);
  fingerprints_.push_back(std::move(r));
  ++version_;
  cv_.notify_all();
}

void Recorder::addEvent(TaskEventRecord r) {
  std::lock_guard lock(mu_);
  events_.push_back(std::move(r));
  ++version_;
  cv_.notify_all();
}

void Recorder::addStats(StatsSample s) {
  std::lock_guard lock(mu_);
  stats_[s.taskId].push_back(std::move(s));
  ++version_;
  cv_.notify_all();
}

void Recorder::setExit(const std::string& taskId, ExitResult r) {
  std::lock_guard lock(mu_);
  exits_[taskId] = std::move(r);
  ++version_;
  cv_.notify_all();
}

void Recorder::noteStreamEnd(const std::string& stream) {
  std::lock_guard lock(mu_);
  ++streamEnds_[stream];
  ++version_;
  cv_.notify_all();
}

std::vector<FingerprintRecord> Recorder::fingerprints() const {
  std::lock_guard lock(mu_);
  return fingerprints_;
}

std::vector<TaskEventRecord> Recorder::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

std::vector<StatsSample> Recorder::stats(const std::string& taskId) const {
  std::lock_guard lock(mu_);
  auto it = stats_.find(taskId);
  return it == stats_.end() ? std::vector<StatsSample>{} : it->second;
}

std::optional<ExitResult> Recorder::exit(const std::string& taskId) const {
  std::lock_guard lock(mu_);
  auto it = exits_.find(taskId);
  if (it == exits_.end()) return std::nullopt;
  return it->second;
}

int Recorder::streamEnds(const std::string& stream) const {
  std::lock_guard lock(mu_);
  auto it = streamEnds_.find(stream);
  return it == streamEnds_.end() ? 0 : it->second;
}

bool Recorder::waitUntil(std::chrono::milliseconds timeout, const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    uint64_t seen;
    {
      std::lock_guard lock(mu_);
      seen = version_;
    }
    if (pred()) return true;
    std::unique_lock lock(mu_);
    // Also wake periodically: pred may depend on state outside the recorder.
    auto until = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
    cv_.wait_until(lock, until, [&] { return version_ != seen; });
    if (std::chrono::steady_clock::now() >= deadline) {
      lock.unlock();
      return pred();
    }
  }
}

}  // namespace s2z::standin
