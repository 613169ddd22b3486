#include "image/image_gc.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace s2z::image {

using std::chrono::milliseconds;

ImageCollector::ImageCollector(ImageStore& store, milliseconds delay)
    : store_(store), delay_(delay), thread_([this] { run(); }) {}

ImageCollector::~ImageCollector() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ImageCollector::run() {
  const milliseconds every = std::clamp(delay_ / 4, milliseconds(250), milliseconds(60000));
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, every, [this] { return stopping_; })) {
    lock.unlock();
    for (const auto& digest : store_.collect(delay_)) {
      spdlog::info("image_gc: removed image {} (unused for {} s)", digest, delay_.count() / 1000.0);
    }
    lock.lock();
  }
}

}  // namespace s2z::image
