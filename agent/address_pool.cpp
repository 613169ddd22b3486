#include "agent/address_pool.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "common/unique_fd.h"

namespace s2z::agent {
namespace fs = std::filesystem;
namespace {

constexpr const char* kTempPrefix = ".lease-";
// A temp file older than this was left by a crash between write and link.
constexpr auto kStaleTemp = std::chrono::minutes(1);

std::string dotted(uint32_t hostOrder) {
  in_addr a{htonl(hostOrder)};
  char out[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, out, sizeof out);
  return out;
}

uint32_t maskOf(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

Result<std::string> readOwner(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return Error{ErrorCode::kNotFound, ENOENT, "lease " + file.string() + " missing"};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes owner to a private temp file, then link()s it to `target`: link
// fails with EEXIST atomically if the address is taken, and a crash never
// leaves a half-written lease under the address's name.
Result<bool> createLease(const fs::path& dir, const fs::path& target, const std::string& owner) {
  std::string tmpl = (dir / (std::string(kTempPrefix) + "XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) return systemError("lease temp file in " + dir.string());
  bool ok = ::write(fd.get(), owner.data(), owner.size()) == static_cast<ssize_t>(owner.size()) &&
            ::fsync(fd.get()) == 0;
  int err = errno;
  if (!ok) {
    ::unlink(tmpl.c_str());
    return systemError("write lease temp file " + tmpl, err);
  }
  int rc = ::link(tmpl.c_str(), target.c_str());
  err = errno;
  ::unlink(tmpl.c_str());
  if (rc == 0) return true;
  if (err == EEXIST) return false;
  return systemError("link lease " + target.string(), err);
}

void removeStaleTemps(const fs::path& dir) {
  std::error_code ec;
  auto now = fs::file_time_type::clock::now();
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind(kTempPrefix, 0) != 0) continue;
    auto mtime = fs::last_write_time(e.path(), ec);
    if (!ec && now - mtime > kStaleTemp) fs::remove(e.path(), ec);
  }
}

}  // namespace

Result<AddressPool> AddressPool::open(const fs::path& dir, const std::string& subnetCidr) {
  auto bad = [&](const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument, "subnet '" + subnetCidr + "': " + why);
  };
  auto slash = subnetCidr.find('/');
  if (slash == std::string::npos) return bad("expected a.b.c.d/prefix");
  in_addr a{};
  if (inet_pton(AF_INET, subnetCidr.substr(0, slash).c_str(), &a) != 1) return bad("bad address");
  int prefix = -1;
  try {
    size_t used = 0;
    prefix = std::stoi(subnetCidr.substr(slash + 1), &used);
    if (used != subnetCidr.size() - slash - 1) prefix = -1;
  } catch (const std::exception&) {
    prefix = -1;
  }
  // /31 and /32 leave no room for gateway + VM; below /8 is surely a typo.
  if (prefix < 8 || prefix > 30) return bad("prefix must be 8..30");
  uint32_t addr = ntohl(a.s_addr);
  if ((addr & ~maskOf(prefix)) != 0) return bad("host bits set (did you mean " +
                                                dotted(addr & maskOf(prefix)) + "/" +
                                                std::to_string(prefix) + "?)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "address pool: create " + dir.string()};
  removeStaleTemps(dir);
  return AddressPool(dir, addr, prefix);
}

Lease AddressPool::leaseFor(uint32_t host) const {
  return Lease{dotted(host), dotted(network_ + 1), prefix_, dotted(maskOf(prefix_))};
}

fs::path AddressPool::fileFor(uint32_t host) const { return dir_ / dotted(host); }

Result<Lease> AddressPool::allocate(const std::string& owner) {
  uint32_t broadcast = network_ | ~maskOf(prefix_);
  // One listing up front, so a big, busy subnet costs one scan rather than a
  // failed link() per taken address; races are still settled by link().
  std::set<std::string> taken;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) taken.insert(e.path().filename().string());
  if (ec) return Error{ErrorCode::kSystem, ec.value(), "allocate address: list " + dir_.string()};
  // network_ + 1 is the gateway.
  for (uint32_t host = network_ + 2; host < broadcast; ++host) {
    if (taken.count(dotted(host))) continue;
    auto created = createLease(dir_, fileFor(host), owner);
    if (!created.ok()) return created.error().wrap("allocate address");
    if (*created) return leaseFor(host);
  }
  return makeError(ErrorCode::kUnavailable,
                   "allocate address: subnet " + dotted(network_) + "/" + std::to_string(prefix_) +
                       " exhausted");
}

Result<Lease> AddressPool::reclaim(const std::string& address, const std::string& owner) {
  in_addr a{};
  if (inet_pton(AF_INET, address.c_str(), &a) != 1)
    return makeError(ErrorCode::kInvalidArgument, "reclaim address: bad address '" + address + "'");
  uint32_t host = ntohl(a.s_addr);
  uint32_t broadcast = network_ | ~maskOf(prefix_);
  if ((host & maskOf(prefix_)) != network_ || host < network_ + 2 || host >= broadcast)
    return makeError(ErrorCode::kInvalidArgument,
                     "reclaim address: " + address + " is not a VM address of " + dotted(network_) +
                         "/" + std::to_string(prefix_));
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto current = readOwner(fileFor(host));
    if (current.ok()) {
      if (*current == owner) return leaseFor(host);
      return makeError(ErrorCode::kAlreadyExists,
                       "reclaim address: " + address + " is leased to '" + *current + "', not '" +
                           owner + "'");
    }
    // The lease file is gone (e.g. state dir wiped): take it back if free.
    auto created = createLease(dir_, fileFor(host), owner);
    if (!created.ok()) return created.error().wrap("reclaim address");
    if (*created) return leaseFor(host);
    // Someone linked it between our read and link: read again.
  }
  return makeError(ErrorCode::kUnavailable, "reclaim address: " + address + " is contended");
}

Result<void> AddressPool::release(const std::string& address) {
  in_addr a{};
  if (inet_pton(AF_INET, address.c_str(), &a) != 1)
    return makeError(ErrorCode::kInvalidArgument, "release address: bad address '" + address + "'");
  if (::unlink(fileFor(ntohl(a.s_addr)).c_str()) < 0 && errno != ENOENT)
    return systemError("release address " + address);
  return okResult();
}

}  // namespace s2z::agent
