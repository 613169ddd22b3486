#include "image/image_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"
#include "image/image_reference.h"
#include "image/tool_process.h"

namespace s2z::image {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kDiskName[] = "rootfs.ext4";
constexpr char kConfigName[] = "image.json";
constexpr char kEntryPrefix[] = "sha256-";
constexpr char kTrashPrefix[] = ".trash-";
// How often a running download reports its bytes (the docker driver: 10 s).
constexpr std::chrono::seconds kProgressInterval{10};

bool isDigestHex(const std::string& hex) {
  return hex.size() == 64 && hex.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// tags/<name>: the digest a registry reference last resolved to. '/' is the
// only character of a reference a file name cannot hold.
fs::path tagFile(const fs::path& root, const std::string& ref) {
  std::string name = ref;
  std::replace(name.begin(), name.end(), '/', '%');
  return root / "tags" / name;
}

std::string readTag(const fs::path& root, const std::string& ref) {
  std::ifstream in(tagFile(root, ref));
  std::string digest;
  std::getline(in, digest);
  return digest;
}

void writeTag(const fs::path& root, const std::string& ref, const std::string& digest) {
  fs::path file = tagFile(root, ref);
  if (file.filename().string().size() > 250) return;  // no index; the registry answers
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  fs::path tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << digest << "\n";
    if (!out) return;
  }
  fs::rename(tmp, file, ec);
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

// skopeo's message says what went wrong; its words decide the code.
Error classify(const std::string& image, const Error& e) {
  const std::string& m = e.message;
  ErrorCode code = ErrorCode::kFailedPrecondition;
  std::string reason = "cannot be pulled";
  if (e.code == ErrorCode::kTimeout) {
    code = ErrorCode::kUnavailable;
    reason = "timed out";
  } else if (contains(m, "unauthorized") || contains(m, "authentication required") || contains(m, "denied")) {
    reason = "unauthorized";
  } else if (contains(m, "manifest unknown") || contains(m, "not found") || contains(m, "no such file") ||
             contains(m, "name unknown")) {
    code = ErrorCode::kNotFound;
    reason = "not found";
  } else if (contains(m, "connection refused") || contains(m, "no such host") || contains(m, "i/o timeout") ||
             contains(m, "network is unreachable") || contains(m, "no route to host") ||
             contains(m, "connection reset")) {
    code = ErrorCode::kUnavailable;
    reason = "registry unreachable";
  } else if (contains(m, "certificate")) {
    reason = "TLS verification failed";
  }
  return makeError(code, "image \"" + image + "\": " + reason + " (" + m + ")");
}

// skopeo's authentication and TLS options; `src`: copy's source-side names.
std::vector<std::string> skopeoOptions(const std::string& ref, const PullOptions& o, bool src) {
  std::vector<std::string> args;
  if (isLocalReference(ref)) return args;
  const std::string p = src ? "--src-" : "--";
  if (!o.username.empty()) args.push_back(p + "creds=" + o.username + ":" + o.password);
  else if (!o.authFile.empty()) args.push_back(p + "authfile=" + o.authFile.string());
  else args.push_back(p + "no-creds");
  if (!o.tlsVerify) args.push_back(p + "tls-verify=false");
  if (!o.certDir.empty()) args.push_back(p + "cert-dir=" + o.certDir.string());
  return args;
}

std::vector<std::string> stringList(const json& v) {
  std::vector<std::string> out;
  if (!v.is_array()) return out;
  for (const auto& item : v) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

json configJson(const ImageConfig& c) {
  return {{"Entrypoint", c.entrypoint}, {"Cmd", c.cmd}, {"Env", c.env},
          {"WorkingDir", c.workingDir}, {"User", c.user}, {"StopSignal", c.stopSignal}};
}

ImageConfig configFrom(const json& c) {
  ImageConfig out;
  if (!c.is_object()) return out;
  out.entrypoint = stringList(c.value("Entrypoint", json()));
  out.cmd = stringList(c.value("Cmd", json()));
  out.env = stringList(c.value("Env", json()));
  out.workingDir = c.value("WorkingDir", std::string());
  out.user = c.value("User", std::string());
  out.stopSignal = c.value("StopSignal", std::string());
  return out;
}

Result<void> writeFileSynced(const fs::path& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return systemError("write " + path.string());
  if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()) || ::fsync(fd.get()) != 0) {
    return systemError("write " + path.string());
  }
  return okResult();
}

Result<void> syncPath(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) return systemError("fsync " + path.string());
  return okResult();
}

// Bytes of the regular files under dir (symlinks not followed).
uint64_t treeBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  }
  return total;
}

// kFailedPrecondition unless the cache's filesystem has `needed` bytes free
// plus 64 MiB to spare (the host keeps working when an image is large).
Result<void> checkFreeSpace(const std::string& image, const fs::path& root, uint64_t needed) {
  struct statvfs vfs{};
  if (::statvfs(root.c_str(), &vfs) != 0) return okResult();
  uint64_t freeBytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (freeBytes >= needed + (64u << 20)) return okResult();
  return makeError(ErrorCode::kFailedPrecondition, "image \"" + image + "\": not enough disk space in " +
                                                       root.string() + " (" + std::to_string(needed >> 20) +
                                                       " MiB needed, " + std::to_string(freeBytes >> 20) + " MiB free)");
}

// Removes a directory tree on scope exit unless released.
class TreeGuard {
 public:
  explicit TreeGuard(fs::path dir) : dir_(std::move(dir)) {}
  ~TreeGuard() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  TreeGuard(const TreeGuard&) = delete;
  TreeGuard& operator=(const TreeGuard&) = delete;

 private:
  fs::path dir_;
};

Result<PreparedImage> readCached(const fs::path& dir) {
  std::ifstream in(dir / kConfigName);
  if (!in || !fs::exists(dir / kDiskName)) return makeError(ErrorCode::kNotFound, "not cached");
  json stored = json::parse(in, nullptr, false);
  if (!stored.is_object()) return makeError(ErrorCode::kNotFound, "cache entry unreadable");
  PreparedImage p;
  p.digest = stored.value("digest", std::string());
  p.config = configFrom(stored.value("config", json()));
  p.disk = dir / kDiskName;
  std::error_code ec;
  p.diskBytes = fs::file_size(p.disk, ec);
  return p;
}

}  // namespace

Result<ImageConfig> parseImageConfig(const std::string& text) {
  json doc = json::parse(text, nullptr, false);
  if (!doc.is_object()) return makeError(ErrorCode::kInvalidArgument, "image config: not a JSON object");
  return configFrom(doc.value("config", json()));
}

Result<PreparedImage> ImageStore::prepare(const std::string& image, const PullOptions& options,
                                          const std::function<void(const std::string&)>& progress) {
  auto started = Clock::now();
  auto say = [&](const std::string& what) {
    if (progress) progress(what);
  };
  auto ref = skopeoReference(image);
  if (!ref.ok()) return ref.error();
  const bool local = isLocalReference(*ref);

  auto finish = [&](PreparedImage p, const std::string& digest, bool cached) {
    p.reference = *ref;
    p.digest = digest;
    p.cached = cached;
    p.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (!local) writeTag(root_, *ref, digest);
    return p;
  };
  // The cached entry of `hex`, leased; kNotFound when not cached.
  auto leaseCached = [&](const std::string& hex) -> Result<PreparedImage> {
    Result<PreparedImage> cached = makeError(ErrorCode::kNotFound, "not cached");
    auto lease = usage_->acquireIf(hex, [&] {
      cached = readCached(root_ / (kEntryPrefix + hex));
      return cached.ok();
    });
    if (!lease) return cached.error();
    cached->lease = std::move(lease);
    return cached;
  };

  // A tag this node knows needs no registry (a local archive may change).
  if (!local && !options.forcePull) {
    std::string known = readTag(root_, *ref);
    if (known.rfind("sha256:", 0) == 0 && isDigestHex(known.substr(7))) {
      if (auto cached = leaseCached(known.substr(7)); cached.ok()) return finish(std::move(*cached), known, true);
    }
  }

  std::vector<std::string> inspect{"skopeo", "inspect", "--format", "{{.Digest}}"};
  for (auto& o : skopeoOptions(*ref, options, false)) inspect.push_back(o);
  inspect.push_back(*ref);
  auto digestOut = runTool(inspect, options.timeout);
  if (!digestOut.ok()) return classify(image, digestOut.error());
  std::string digest = digestOut->out;
  while (!digest.empty() && (digest.back() == '\n' || digest.back() == ' ')) digest.pop_back();
  if (digest.rfind("sha256:", 0) != 0 || !isDigestHex(digest.substr(7))) {
    return makeError(ErrorCode::kFailedPrecondition, "image \"" + image + "\": no manifest digest (\"" + digest + "\")");
  }
  const std::string hex = digest.substr(7);
  const fs::path dir = root_ / (kEntryPrefix + hex);
  if (auto cached = leaseCached(hex); cached.ok()) return finish(std::move(*cached), digest, true);

  std::error_code ec;
  fs::create_directories(root_ / ".locks", ec);
  if (ec) return makeError(ErrorCode::kSystem, "image cache " + root_.string() + ": " + ec.message());
  // A private registry's image is as secret as its credentials: owner only.
  if (::chmod(root_.c_str(), 0700) != 0) return systemError("image cache " + root_.string());
  UniqueFd lock(::open((root_ / ".locks" / (hex + ".lock")).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock) return systemError("image cache lock");
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return systemError("image cache lock");
  }
  // Another task may have pulled it meanwhile.
  if (auto cached = leaseCached(hex); cached.ok()) return finish(std::move(*cached), digest, true);

  const fs::path work = root_ / (".tmp-" + hex);
  fs::remove_all(work, ec);  // a pull that was killed
  fs::create_directories(work, ec);
  if (ec) return makeError(ErrorCode::kSystem, "image cache " + work.string() + ": " + ec.message());
  TreeGuard cleanup(work);
  const std::string layout = "oci:" + (work / "layout").string() + ":image";

  say("Downloading image " + *ref);
  std::vector<std::string> copy{"skopeo", "copy", "--quiet"};
  for (auto& o : skopeoOptions(*ref, options, true)) copy.push_back(o);
  copy.push_back(*ref);
  copy.push_back(layout);
  ToolTicker downloading{kProgressInterval, [&] {
                           char mib[32];
                           std::snprintf(mib, sizeof mib, "%.1f", static_cast<double>(treeBytes(work)) / (1 << 20));
                           say("Downloading image " + *ref + ": " + mib + " MiB so far");
                         }};
  if (auto copied = runTool(copy, options.timeout, &downloading); !copied.ok()) return classify(image, copied.error());

  auto configOut = runTool({"skopeo", "inspect", "--config", layout}, options.timeout);
  if (!configOut.ok()) return configOut.error().wrap("image \"" + image + "\": read its config");
  auto config = parseImageConfig(configOut->out);
  if (!config.ok()) return config.error().wrap("image \"" + image + "\"");

  // Before unpacking: the files take at least what their compressed layers
  // take, and the disk as much again (the exact check follows the unpack).
  if (auto room = checkFreeSpace(image, root_, 2 * treeBytes(work / "layout")); !room.ok()) return room.error();
  say("Unpacking image " + *ref);
  // `raw unpack`: the root filesystem only (a runtime bundle's config.json
  // would resolve the image's User, which is the guest agent's job).
  const fs::path rootfs = work / "rootfs";
  if (auto unpacked = runTool({"umoci", "raw", "unpack", "--image", (work / "layout").string() + ":image",
                               rootfs.string()},
                              options.timeout);
      !unpacked.ok()) {
    return unpacked.error().wrap("image \"" + image + "\": unpack");
  }
  // ext4 needs room for metadata and a journal: used + 30% + 16 MiB, >= 64 MiB.
  uint64_t used = treeBytes(rootfs);
  uint64_t sizeKib = std::max<uint64_t>(used / 1024 * 13 / 10 + 16384, 65536);
  if (auto room = checkFreeSpace(image, root_, sizeKib * 1024); !room.ok()) return room.error();
  say("Converting image " + *ref + " to a disk");
  const fs::path staged = work / "ready";
  fs::create_directories(staged, ec);
  const fs::path disk = staged / kDiskName;
  if (auto made = runTool({"mke2fs", "-q", "-t", "ext4", "-L", "s2z-image", "-d", rootfs.string(), "-F",
                           disk.string(), std::to_string(sizeKib) + "k"},
                          options.timeout);
      !made.ok()) {
    return made.error().wrap("image \"" + image + "\": mke2fs");
  }
  ::chmod(disk.c_str(), 0600);
  S2Z_TRY(syncPath(disk), "");
  json stored = {{"digest", digest}, {"reference", *ref}, {"config", configJson(*config)}};
  S2Z_TRY(writeFileSynced(staged / kConfigName, stored.dump(2)), "");
  // Publish and lease in one step: collect() cannot see it unleased.
  Result<void> published = okResult();
  auto lease = usage_->acquireIf(hex, [&] {
    if (::rename(staged.c_str(), dir.c_str()) != 0) {
      published = systemError("publish " + dir.string());
      return false;
    }
    return true;
  });
  if (!lease) return published.error();
  S2Z_TRY(syncPath(root_), "");
  PreparedImage p;
  p.disk = dir / kDiskName;
  p.diskBytes = fs::file_size(p.disk, ec);
  p.unpackedBytes = used;
  p.config = *config;
  p.lease = std::move(lease);
  return finish(std::move(p), digest, false);
}

std::shared_ptr<ImageLease> ImageStore::leaseDisk(const fs::path& disk) {
  if (disk.filename() != kDiskName || disk.parent_path().parent_path() != root_) return nullptr;
  std::string entry = disk.parent_path().filename().string();
  if (entry.rfind(kEntryPrefix, 0) != 0 || !isDigestHex(entry.substr(7))) return nullptr;
  // Leased even if gone: the task still names it, and a pull may bring it back.
  return usage_->acquireIf(entry.substr(7), [] { return true; });
}

std::vector<std::string> ImageStore::collect(std::chrono::milliseconds unusedFor) {
  std::vector<std::string> removed;
  std::vector<fs::path> trash;
  std::error_code ec;
  std::vector<fs::path> entries;  // listed first: the loop renames
  for (const auto& item : fs::directory_iterator(root_, ec)) entries.push_back(item.path());
  for (const auto& path : entries) {
    const std::string name = path.filename().string();
    if (name.rfind(kTrashPrefix, 0) == 0) {
      trash.push_back(path);  // a removal the plugin died in
      continue;
    }
    if (name.rfind(kEntryPrefix, 0) != 0 || !isDigestHex(name.substr(7))) continue;
    const std::string hex = name.substr(7);
    // Renamed away under the table's lock, so no prepare can lease it after.
    fs::path doomed = root_ / (kTrashPrefix + hex);
    bool gone = usage_->removeIfIdle(hex, unusedFor, [&] {
      std::error_code renameError;
      fs::remove_all(doomed, renameError);
      fs::rename(path, doomed, renameError);
      return !renameError;
    });
    if (!gone) continue;
    trash.push_back(doomed);
    removed.push_back("sha256:" + hex);
  }
  for (const auto& dir : trash) fs::remove_all(dir, ec);
  // Tags that name removed images would only cost a registry lookup; drop them.
  if (!removed.empty()) {
    for (const auto& item : fs::directory_iterator(root_ / "tags", ec)) {
      std::ifstream in(item.path());
      std::string digest;
      std::getline(in, digest);
      if (std::find(removed.begin(), removed.end(), digest) != removed.end()) fs::remove(item.path(), ec);
    }
  }
  return removed;
}

}  // namespace s2z::image
