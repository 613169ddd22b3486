#include "image/image_lease.h"

namespace s2z::image {

ImageLease::ImageLease(std::shared_ptr<ImageUsage> usage, std::string hex)
    : usage_(std::move(usage)), hex_(std::move(hex)) {}

ImageLease::~ImageLease() { usage_->release(hex_); }

std::shared_ptr<ImageLease> ImageUsage::acquireIf(const std::string& hex, const std::function<bool()>& present) {
  std::lock_guard lock(mutex_);
  if (!present()) return nullptr;
  ++entries_[hex].holders;
  return std::make_shared<ImageLease>(shared_from_this(), hex);
}

void ImageUsage::release(const std::string& hex) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(hex);
  if (it == entries_.end() || it->second.holders == 0) return;
  if (--it->second.holders == 0) it->second.idleSince = Clock::now();
}

bool ImageUsage::removeIfIdle(const std::string& hex, std::chrono::milliseconds unusedFor,
                              const std::function<bool()>& remove) {
  std::lock_guard lock(mutex_);
  Clock::time_point idleSince = startedAt_;
  if (auto it = entries_.find(hex); it != entries_.end()) {
    if (it->second.holders > 0) return false;
    idleSince = it->second.idleSince;
  }
  if (Clock::now() - idleSince < unusedFor) return false;
  if (!remove()) return false;
  entries_.erase(hex);
  return true;
}

unsigned ImageUsage::holders(const std::string& hex) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(hex);
  return it == entries_.end() ? 0 : it->second.holders;
}

}  // namespace s2z::image
