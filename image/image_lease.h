// Who uses which cached image, so image_gc removes only images nobody has
// used for its delay (the docker driver's image_delay). A task holds an
// ImageLease from the pull until DestroyTask; an image's idle time starts when
// its last lease ends, or when this plugin started for images it has not
// leased since (the table is in memory: after a restart RecoverTask takes the
// leases again, and an image no recovered task uses waits one full delay).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace s2z::image {

class ImageUsage;

// One task's use of one image (by digest hex); released on destruction.
class ImageLease {
 public:
  ImageLease(std::shared_ptr<ImageUsage> usage, std::string hex);
  ~ImageLease();
  ImageLease(const ImageLease&) = delete;
  ImageLease& operator=(const ImageLease&) = delete;
  const std::string& hex() const { return hex_; }

 private:
  std::shared_ptr<ImageUsage> usage_;
  std::string hex_;
};

class ImageUsage : public std::enable_shared_from_this<ImageUsage> {
 public:
  using Clock = std::chrono::steady_clock;

  // Leases `hex` if present() says the image is there; both under the table's
  // lock, so a collect() cannot remove it in between. Null: not present.
  std::shared_ptr<ImageLease> acquireIf(const std::string& hex, const std::function<bool()>& present);

  // Calls remove() for `hex` if no lease holds it and it has been idle for
  // `unusedFor`, under the table's lock (no acquireIf runs meanwhile).
  // Returns whether it was removed.
  bool removeIfIdle(const std::string& hex, std::chrono::milliseconds unusedFor, const std::function<bool()>& remove);

  unsigned holders(const std::string& hex) const;

 private:
  friend class ImageLease;
  void release(const std::string& hex);

  struct Entry {
    unsigned holders = 0;
    Clock::time_point idleSince;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  const Clock::time_point startedAt_ = Clock::now();
};

}  // namespace s2z::image
