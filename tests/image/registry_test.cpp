// ImageStore against a real registry (tests/registry: Debian's
// docker-registry over HTTPS from a test CA, htpasswd auth or public, in its
// own network namespace): tags and digests share a cache entry, credentials
// (given or from a docker config.json) and TLS settings decide whether a pull
// works and a refusal says why and leaves nothing behind, and the multi-layer
// test image (scripts/build-layered-image.sh) keeps its whiteouts, opaque
// directory, capability, setuid bit and config on the ext4 disk. Needs root.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "image/image_store.h"
#include "tests/image/image_test_support.h"
#include "tests/registry/test_registry.h"

using namespace s2z;
using namespace s2z::image;
using s2z::testing::TestRegistry;
namespace fs = std::filesystem;

namespace {

using test::capture;
using test::sh;
using test::StoreDir;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The error text of a failed Result, "" when ok: safe inside *_MESSAGE
// macros, which doctest may evaluate for passing assertions too.
template <typename R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.error().describe();
}

std::unique_ptr<TestRegistry> startRegistry(TestRegistry::Options options = {}) {
  auto started = TestRegistry::start(options);
  REQUIRE_MESSAGE(started.ok(), why(started));
  return std::move(*started);
}

// Credentials and the registry's CA, as a task with an auth block would pull.
PullOptions trusted(const TestRegistry& reg) {
  PullOptions o;
  o.username = reg.username();
  o.password = reg.password();
  o.certDir = reg.certsDir() / reg.host();
  o.timeout = std::chrono::seconds(60);
  return o;
}

// A one-layer image with /hello holding `text`, as an oci-archive.
struct TinyImage {
  fs::path dir;
  explicit TinyImage(const std::string& text) {
    char tmpl[] = "/tmp/s2zt-tiny-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    const std::string d = dir.string();
    REQUIRE(sh("umoci init --layout " + d + "/layout && umoci new --image " + d + "/layout:t && umoci unpack --image " +
               d + "/layout:t " + d + "/bundle >/dev/null") == 0);
    std::ofstream(dir / "bundle/rootfs/hello") << text << "\n";
    REQUIRE(sh("umoci repack --image " + d + "/layout:t " + d + "/bundle && umoci config --image " + d +
               "/layout:t --config.cmd /hello && skopeo copy --quiet oci:" + d + "/layout:t oci-archive:" + d +
               "/tiny.oci.tar:t") == 0);
  }
  ~TinyImage() { fs::remove_all(dir); }
  fs::path archive() const { return dir / "tiny.oci.tar"; }
};

// Fails the test unless `r` is the refusal a user should see for `image`.
void checkRefused(const Result<PreparedImage>& r, const std::string& image, ErrorCode code,
                  const std::string& reason) {
  REQUIRE_FALSE(r.ok());
  INFO(r.error().describe());
  CHECK(r.error().code == code);
  CHECK(has(r.error().message, "image \"" + image + "\": " + reason));
}

}  // namespace

TEST_CASE("a registry image pulled by tag, then by digest, is one cache entry and the second is cached") {
  auto reg = startRegistry();
  TinyImage tiny("pulled from the registry");
  auto pushed = reg->push(tiny.archive(), "s2z/tiny:1");
  REQUIRE_MESSAGE(pushed.ok(), why(pushed));
  StoreDir store;
  ImageStore images(store.root);

  auto byTag = images.prepare(reg->host() + "/s2z/tiny:1", trusted(*reg));
  REQUIRE_MESSAGE(byTag.ok(), why(byTag));
  CHECK_FALSE(byTag->cached);
  CHECK(byTag->digest == *pushed);
  CHECK(byTag->reference == "docker://" + reg->host() + "/s2z/tiny:1");
  CHECK(byTag->config.cmd == std::vector<std::string>{"/hello"});
  CHECK(capture("debugfs -R 'cat /hello' " + byTag->disk.string() + " 2>/dev/null") == "pulled from the registry\n");

  auto byDigest = images.prepare(reg->host() + "/s2z/tiny@" + *pushed, trusted(*reg));
  REQUIRE_MESSAGE(byDigest.ok(), why(byDigest));
  CHECK(byDigest->cached);
  CHECK(byDigest->disk == byTag->disk);
  CHECK(store.images() == std::vector<std::string>{"sha256-" + pushed->substr(7)});
}

TEST_CASE("a wrong password or no credentials is unauthorized, names the image and caches nothing") {
  auto reg = startRegistry();
  TinyImage tiny("private");
  auto pushed = reg->push(tiny.archive(), "s2z/private:1");
  REQUIRE_MESSAGE(pushed.ok(), why(pushed));
  StoreDir store;
  ImageStore images(store.root);
  const std::string image = reg->host() + "/s2z/private:1";

  PullOptions wrong = trusted(*reg);
  wrong.password = "not-" + reg->password();
  checkRefused(images.prepare(image, wrong), image, ErrorCode::kFailedPrecondition, "unauthorized");
  CHECK(store.images().empty());

  PullOptions anonymous = trusted(*reg);
  anonymous.username.clear();
  anonymous.password.clear();
  checkRefused(images.prepare(image, anonymous), image, ErrorCode::kFailedPrecondition, "unauthorized");
  // By digest too: the manifest is as private as the tag.
  checkRefused(images.prepare(reg->host() + "/s2z/private@" + *pushed, anonymous),
               reg->host() + "/s2z/private@" + *pushed, ErrorCode::kFailedPrecondition, "unauthorized");
  CHECK(store.images().empty());
}

TEST_CASE("credentials from a docker config.json (authFile) pull a private image") {
  auto reg = startRegistry();
  TinyImage tiny("auth file");
  REQUIRE(reg->push(tiny.archive(), "s2z/authfile:1").ok());
  StoreDir store;
  ImageStore images(store.root);
  const fs::path config = store.root.parent_path() / (store.root.filename().string() + "-config.json");
  REQUIRE(reg->writeDockerConfig(config).ok());
  PullOptions fromFile;
  fromFile.authFile = config;
  fromFile.certDir = reg->certsDir() / reg->host();
  auto p = images.prepare(reg->host() + "/s2z/authfile:1", fromFile);
  fs::remove(config);
  REQUIRE_MESSAGE(p.ok(), why(p));
  CHECK_FALSE(p->cached);
  CHECK(capture("debugfs -R 'cat /hello' " + p->disk.string() + " 2>/dev/null") == "auth file\n");
}

TEST_CASE("TLS: a registry whose CA is unknown is refused; its certDir or tlsVerify=false lets the pull through") {
  auto reg = startRegistry();
  TinyImage tiny("tls");
  REQUIRE(reg->push(tiny.archive(), "s2z/tls:1").ok());
  const std::string image = reg->host() + "/s2z/tls:1";

  StoreDir refusedStore;
  PullOptions unknownCa = trusted(*reg);
  unknownCa.certDir.clear();
  checkRefused(ImageStore(refusedStore.root).prepare(image, unknownCa), image, ErrorCode::kFailedPrecondition,
               "TLS verification failed");
  CHECK(refusedStore.images().empty());

  StoreDir withCa;
  auto verified = ImageStore(withCa.root).prepare(image, trusted(*reg));
  REQUIRE_MESSAGE(verified.ok(), why(verified));
  CHECK_FALSE(verified->cached);

  StoreDir unverifiedStore;
  PullOptions unverified = unknownCa;
  unverified.tlsVerify = false;
  auto pulled = ImageStore(unverifiedStore.root).prepare(image, unverified);
  REQUIRE_MESSAGE(pulled.ok(), why(pulled));
  CHECK_FALSE(pulled->cached);
  CHECK(pulled->digest == verified->digest);
}

TEST_CASE("a public registry serves pulls without credentials, and ignores wrong ones") {
  auto reg = startRegistry(TestRegistry::Options{.auth = false});
  TinyImage tiny("public");
  auto pushed = reg->push(tiny.archive(), "s2z/public:1");
  REQUIRE_MESSAGE(pushed.ok(), why(pushed));
  const std::string image = reg->host() + "/s2z/public:1";
  StoreDir store;
  ImageStore images(store.root);

  PullOptions anonymous;
  anonymous.certDir = reg->certsDir() / reg->host();
  auto p = images.prepare(image, anonymous);
  REQUIRE_MESSAGE(p.ok(), why(p));
  CHECK_FALSE(p->cached);
  CHECK(p->digest == *pushed);

  // No challenge, so skopeo never sends them: what auth_soft_fail relies on.
  StoreDir fresh;
  PullOptions wrong = trusted(*reg);
  wrong.password = "wrong";
  auto again = ImageStore(fresh.root).prepare(image, wrong);
  REQUIRE_MESSAGE(again.ok(), why(again));
  CHECK_FALSE(again->cached);
  CHECK(again->digest == *pushed);
}

TEST_CASE("a registry where nothing listens is unavailable (worth a retry), and nothing is cached") {
  auto reg = startRegistry();
  StoreDir store;
  const std::string image = reg->closedHost() + "/s2z/tiny:1";
  auto started = std::chrono::steady_clock::now();
  checkRefused(ImageStore(store.root).prepare(image, trusted(*reg)), image, ErrorCode::kUnavailable,
               "registry unreachable");
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  CHECK(store.images().empty());
}

TEST_CASE("the layered image from a registry: whiteouts, an opaque directory, a capability, setuid, its config") {
  const fs::path archive = S2Z_LAYERED_IMAGE;
  REQUIRE_MESSAGE(fs::exists(archive), archive.string() << " is missing: run scripts/build-layered-image.sh");
  auto reg = startRegistry();
  auto pushed = reg->push(archive, "s2z/layered:test");
  REQUIRE_MESSAGE(pushed.ok(), why(pushed));
  StoreDir store;
  auto p = ImageStore(store.root).prepare(reg->host() + "/s2z/layered@" + *pushed, trusted(*reg));
  REQUIRE_MESSAGE(p.ok(), why(p));
  CHECK(p->digest == *pushed);
  auto debugfs = [&](const std::string& request) {
    return capture("debugfs -R '" + request + "' " + p->disk.string() + " 2>&1");
  };

  // Layer 2 wrote it, layer 3's etc/.wh.s2z-deleted removed it.
  CHECK(has(debugfs("stat /etc/s2z-deleted"), "File not found by ext2_lookup"));
  CHECK(has(debugfs("stat /etc/passwd"), "Type: regular"));
  // Layer 2 wrote a and b, layer 4's .wh..wh..opq hid them and added c.
  std::string opaque = debugfs("ls -p /opt/s2z-opaque");
  CHECK(has(opaque, "/c/"));
  CHECK_FALSE(has(opaque, "/a/"));
  CHECK_FALSE(has(opaque, "/b/"));
  CHECK_FALSE(has(opaque, ".wh."));
  // cap_net_bind_service=+ep: VFS_CAP_REVISION_2 | effective, permitted bit 10.
  CHECK(has(debugfs("ea_list /usr/local/bin/busybox-netbind"),
            "security.capability (20) = 01 00 00 02 00 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00"));
  std::string setuid = debugfs("stat /usr/local/bin/s2z-setuid-id");
  CHECK(has(setuid, "Mode:  04755"));
  CHECK(has(setuid, "User:     0"));

  CHECK(p->config.user == "app");
  CHECK(p->config.stopSignal == "SIGQUIT");
  CHECK(p->config.entrypoint == std::vector<std::string>{"/bin/sh"});
  REQUIRE(p->config.cmd.size() == 2);
  CHECK(has(p->config.cmd[1], "busybox httpd -f -p 8080"));
  CHECK(p->config.workingDir == "/srv");
}

TEST_CASE("a tag this node has pulled starts without asking the registry; force_pull asks it again") {
  auto reg = startRegistry();
  TinyImage tiny("known tag");
  REQUIRE(reg->push(tiny.archive(), "s2z/known:1").ok());
  StoreDir store;
  ImageStore images(store.root);
  const std::string image = reg->host() + "/s2z/known:1";
  auto first = images.prepare(image, trusted(*reg));
  REQUIRE_MESSAGE(first.ok(), why(first));
  CHECK_FALSE(first->cached);
  // Credentials the registry would refuse: only a start that never asks it
  // can succeed (as docker runs an image it has without pulling).
  PullOptions refused = trusted(*reg);
  refused.password = "wrong";
  auto known = images.prepare(image, refused);
  REQUIRE_MESSAGE(known.ok(), why(known));
  CHECK(known->cached);
  CHECK(known->disk == first->disk);
  refused.forcePull = true;
  checkRefused(images.prepare(image, refused), image, ErrorCode::kFailedPrecondition, "unauthorized");
}
