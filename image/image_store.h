// OCI/Docker images as the read-only root disks of agent tasks: pulled with
// skopeo, unpacked with umoci (layer order, whiteouts, ownership, xattrs,
// hard links, device nodes), written into an ext4 image with mke2fs -d.
// Nothing of an image format is re-implemented here.
//
// Cache: <root>/sha256-<hex>/{rootfs.ext4, image.json}, one per manifest
// digest, shared by every task that runs the image (read-only to them: a
// snapshot stays valid because the base never changes). A per-digest flock
// (<root>/.locks) makes concurrent starts pull once; work happens in
// <root>/.tmp-<hex>, cleared under that lock before a pull (a killed pull
// leaves nothing that is ever read) and renamed into place when complete.
// A registry tag once resolved is remembered (tags/), so a cached start
// needs no registry, as docker's; force_pull asks the registry again.
//
//   state     on disk                         reached by
//   absent    nothing                         -
//   pulling   .tmp-<hex>/ (layout, bundle)    prepare() holding the lock
//   ready     sha256-<hex>/ (both files)      rename after fsync
//   leased    (ready)                         a task holds an ImageLease
//   removing  .trash-<hex>/                   collect(): idle and unleased
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "image/image_lease.h"

namespace s2z::image {

// The parts of the image's config (OCI image-spec "config") a task uses.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string workingDir;
  std::string user;
  std::string stopSignal;
};

struct PullOptions {
  std::string username, password;   // empty: none (or authFile's)
  std::filesystem::path authFile;   // a docker config.json; empty: none
  bool tlsVerify = true;
  std::filesystem::path certDir;    // per-registry CA directory for skopeo; empty: system
  std::chrono::milliseconds timeout{5 * 60 * 1000};
  bool forcePull = false;           // resolve a tag at the registry even when known here
};

struct PreparedImage {
  std::string reference;            // as skopeo saw it
  std::string digest;               // "sha256:<hex>"
  std::filesystem::path disk;       // the read-only ext4 image
  uint64_t diskBytes = 0;
  uint64_t unpackedBytes = 0;       // the image's files, unpacked; 0 when cached
  ImageConfig config;
  bool cached = false;              // no pull happened
  double seconds = 0;               // time prepare() took
  std::shared_ptr<ImageLease> lease;  // keeps image_gc away while held
};

class ImageStore {
 public:
  explicit ImageStore(std::filesystem::path root)
      : root_(std::move(root)), usage_(std::make_shared<ImageUsage>()) {}

  // Resolves the digest, then returns the cached disk or pulls, unpacks and
  // converts. Errors name the image and the reason: kNotFound (no such
  // image), kFailedPrecondition (unauthorized, not enough disk space),
  // kUnavailable (registry unreachable, timeout: worth a retry),
  // kInvalidArgument (a malformed reference). `progress` hears each stage.
  Result<PreparedImage> prepare(const std::string& image, const PullOptions& options,
                                const std::function<void(const std::string&)>& progress = {});

  // A lease on the cached image whose disk `disk` is (a task recovered
  // after a plugin restart); null when `disk` is not a disk of this cache.
  std::shared_ptr<ImageLease> leaseDisk(const std::filesystem::path& disk);

  // image_gc: removes every cached image that no lease holds and none has
  // held for `unusedFor`, and what a removal killed midway left behind.
  // Returns the digests removed.
  std::vector<std::string> collect(std::chrono::milliseconds unusedFor);

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  std::shared_ptr<ImageUsage> usage_;
};

// The ImageConfig of an image-spec config JSON (skopeo inspect --config).
Result<ImageConfig> parseImageConfig(const std::string& json);

}  // namespace s2z::image
