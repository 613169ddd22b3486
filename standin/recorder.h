// Thread-safe store of everything the stand-in saw on the plugin's streams,
// with waits for tests ("until a healthy fingerprint arrives").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "standin/records.h"

namespace s2z::standin {

class Recorder {
 public:
  void addFingerprint(FingerprintRecord r);
  void addEvent(TaskEventRecord r);
  void addStats(StatsSample s);
  void setExit(const std::string& taskId, ExitResult r);
  void noteStreamEnd(const std::string& stream);

  std::vector<FingerprintRecord> fingerprints() const;
  std::vector<TaskEventRecord> events() const;
  std::vector<StatsSample> stats(const std::string& taskId) const;
  std::optional<ExitResult> exit(const std::string& taskId) const;
  int streamEnds(const std::string& stream) const;

  // Blocks until `pred` holds or `timeout` passes; `pred` is re-evaluated
  // (without the lock, so it may call the getters) after every new record.
  bool waitUntil(std::chrono::milliseconds timeout, const std::function<bool()>& pred);

 private:
  mutable std::mutex mu_;  // guards all fields below
  std::condition_variable cv_;
  std::vector<FingerprintRecord> fingerprints_;
  std::vector<TaskEventRecord> events_;
  std::map<std::string, std::vector<StatsSample>> stats_;
  std::map<std::string, ExitResult> exits_;
  std::map<std::string, int> streamEnds_;
  uint64_t version_ = 0;  // bumped on every change
};

}  // namespace s2z::standin
