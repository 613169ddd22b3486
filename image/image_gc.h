// image_gc: a thread that removes cached images no task has used for the
// plugin's delay (ImageStore::collect), like the docker driver's image GC.
// It looks every quarter of the delay (at least every 250 ms, at most every
// minute), so an image goes between `delay` and 1.25 x `delay` after its last
// task was destroyed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "image/image_store.h"

namespace s2z::image {

class ImageCollector {
 public:
  // `store` must outlive the collector.
  ImageCollector(ImageStore& store, std::chrono::milliseconds delay);
  ~ImageCollector();  // stops and joins the thread
  ImageCollector(const ImageCollector&) = delete;
  ImageCollector& operator=(const ImageCollector&) = delete;

 private:
  void run();

  ImageStore& store_;
  const std::chrono::milliseconds delay_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;     // last: starts after the fields it uses
};

}  // namespace s2z::image
