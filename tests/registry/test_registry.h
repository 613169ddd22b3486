// Test fixture: a real image registry — Debian's docker-registry
// (distribution 2.8) — serving HTTPS with a certificate from a throw-away CA,
// with htpasswd (bcrypt) authentication or none, alone in its own network
// namespace. A veth pair joins that namespace to the caller's: the caller's
// end is 10.231.<a>.<b+1>/30, the registry's 10.231.<a>.<b+2>/30 and the
// namespace has no other link and no default route, so no packet leaves the
// pair. <a>.<b> is a /30 slot of 10.231.0.0/16 held with a flock in
// /run/s2z-test-registry for the fixture's life: test processes running side
// by side never share one (10.89.0.0/24, the VMs' default subnet, is far away).
//
// Everything it creates — the registry process, the veth pair, the namespace,
// its temp dir (CA, certificate, htpasswd, config, storage, log) — is removed
// by the destructor, also when a test fails (doctest's REQUIRE throws). If the
// test process is killed, the registry dies with it (PR_SET_PDEATHSIG) and the
// next fixture to take the slot deletes the veth, namespace and temp dir left
// behind (the slot's lock file names that dir).
//
// Needs root, iproute2, openssl, apache2-utils (htpasswd), docker-registry,
// curl and skopeo.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::testing {

class TestRegistry {
 public:
  struct Options {
    // true: htpasswd auth with username()/password(); false: a public
    // registry anyone may pull from and push to. TLS is on either way.
    bool auth = true;
    // The network namespace (a name under /run/netns) the client end of the
    // veth goes into, for a plugin that runs there; empty: the caller's.
    // push() and the readiness probe then run in it too.
    std::string clientNetns;
  };

  // Creates the namespace, the veth pair, the CA and certificate, the config,
  // starts the registry and waits (at most 15 s) until it answers /v2/ over
  // TLS (401 with auth, 200 without). On failure, what was made is removed
  // and the error says which step failed (with the registry's log when it
  // was the registry). Start it from a thread that outlives the fixture: the
  // registry is killed when the starting thread ends.
  static Result<std::unique_ptr<TestRegistry>> start(Options options);
  static Result<std::unique_ptr<TestRegistry>> start() { return start(Options{}); }

  ~TestRegistry();
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;

  // "10.231.a.b:5000": the registry part of image references.
  std::string host() const { return ip_ + ":5000"; }
  // The registry's address in its namespace.
  const std::string& ip() const { return ip_; }
  // An address in the namespace where nothing listens (connection refused).
  std::string closedHost() const { return ip_ + ":5001"; }
  const std::string& username() const { return username_; }
  const std::string& password() const { return password_; }
  bool auth() const { return options_.auth; }

  // Laid out like /etc/containers/certs.d: <certsDir>/<host()>/ca.crt. The
  // directory for skopeo's --cert-dir is certsDir() / host().
  std::filesystem::path certsDir() const { return dir_ / "certs.d"; }
  std::filesystem::path caCert() const { return certsDir() / host() / "ca.crt"; }
  // The registry's stdout and stderr.
  std::filesystem::path logFile() const { return dir_ / "registry.log"; }

  // Pushes an oci-archive (its only image) as <host()>/<repoTag> with skopeo
  // copy, with the credentials (when auth()) and certsDir(). Returns the
  // manifest digest as the registry stores it ("sha256:<hex>"). Fails with
  // skopeo's message.
  Result<std::string> push(const std::filesystem::path& ociArchive, const std::string& repoTag) const;

  // Writes a docker config.json (mode 0600) whose "auths" entry for host()
  // holds base64(username:password), as `docker login` writes it.
  Result<void> writeDockerConfig(const std::filesystem::path& path) const;

 private:
  explicit TestRegistry(Options options) : options_(options) {}
  Result<void> takeSlot();
  Result<void> makeNetwork();
  Result<void> makeCredentials();
  Result<void> startRegistry();
  Result<void> waitUntilAnswering(std::chrono::milliseconds limit);
  void stopRegistry();
  // argv, run in the client's namespace.
  std::vector<std::string> asClient(std::vector<std::string> argv) const;
  // `ip` argv for the client end's namespace.
  std::vector<std::string> clientIp(std::vector<std::string> args) const;
  std::string logTail() const;

  Options options_;
  int slot_ = -1;
  UniqueFd slotLock_;
  std::filesystem::path slotLockPath_;
  std::string netns_, hostLink_, hostIp_, ip_;
  bool netnsMade_ = false, linkMade_ = false;
  std::filesystem::path dir_;
  std::string username_ = "s2z-tester", password_;
  pid_t registryPid_ = -1;
};

}  // namespace s2z::testing
