// ImageStore against real OCI images the test builds with umoci: an image
// becomes a read-only ext4 disk with its owners and modes, once per digest,
// and nothing half-made stays in the cache.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "image/image_gc.h"
#include "image/image_store.h"
#include "tests/image/image_test_support.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::image;
namespace fs = std::filesystem;

namespace {

using test::capture;
using test::sh;
using test::StoreDir;

// A temp dir with a one-layer image "t" at <dir>/layout: /app/hello (owned
// by 1000:1000), /app/su (setuid); Entrypoint, Cmd, Env, WorkingDir, User.
struct TestImage {
  fs::path dir;
  explicit TestImage(const std::string& greeting = "hello") {
    char tmpl[] = "/tmp/s2zt-image-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    const std::string d = dir.string();
    REQUIRE(sh("umoci init --layout " + d + "/layout && umoci new --image " + d + "/layout:t && umoci unpack --image " +
               d + "/layout:t " + d + "/bundle >/dev/null") == 0);
    fs::create_directories(dir / "bundle/rootfs/app");
    std::ofstream(dir / "bundle/rootfs/app/hello") << greeting << "\n";
    std::ofstream(dir / "bundle/rootfs/app/su") << "#!/bin/sh\n";
    REQUIRE(sh("chown 1000:1000 " + d + "/bundle/rootfs/app/hello && chmod 4755 " + d + "/bundle/rootfs/app/su") == 0);
    REQUIRE(sh("umoci repack --image " + d + "/layout:t " + d + "/bundle && umoci config --image " + d +
               "/layout:t --config.entrypoint /bin/sh --config.cmd -c --config.cmd 'echo hi' --config.env A=1 "
               "--config.workingdir /app --config.user app --config.stopsignal SIGQUIT") == 0);
  }
  ~TestImage() { fs::remove_all(dir); }
  std::string ref() const { return "oci:" + (dir / "layout").string() + ":t"; }
};

}  // namespace

TEST_CASE("an OCI image becomes a read-only ext4 disk with its owners and modes, and its config") {
  TestImage img;
  StoreDir store;
  ImageStore images(store.root);
  std::vector<std::string> stages;
  auto p = images.prepare(img.ref(), PullOptions{}, [&](const std::string& s) { stages.push_back(s); });
  REQUIRE_MESSAGE(p.ok(), s2z::tests::errText(p));
  CHECK_FALSE(p->cached);
  CHECK(p->digest.rfind("sha256:", 0) == 0);
  CHECK(p->disk == store.root / ("sha256-" + p->digest.substr(7)) / "rootfs.ext4");
  CHECK(p->diskBytes > 0);
  CHECK(p->config.entrypoint == std::vector<std::string>{"/bin/sh"});
  CHECK(p->config.cmd == std::vector<std::string>{"-c", "echo hi"});
  CHECK(p->config.env == std::vector<std::string>{"A=1"});
  CHECK(p->config.workingDir == "/app");
  CHECK(p->config.user == "app");
  CHECK(p->config.stopSignal == "SIGQUIT");
  CHECK(stages.size() == 3);  // downloading, unpacking, converting
  const std::string disk = p->disk.string();
  CHECK(capture("debugfs -R 'cat /app/hello' " + disk + " 2>/dev/null") == "hello\n");
  std::string owned = capture("debugfs -R 'stat /app/hello' " + disk + " 2>/dev/null");
  CHECK(owned.find("User:  1000") != std::string::npos);
  std::string setuid = capture("debugfs -R 'stat /app/su' " + disk + " 2>/dev/null");
  CHECK(setuid.find("Mode:  04755") != std::string::npos);
  CHECK(store.images() == std::vector<std::string>{"sha256-" + p->digest.substr(7)});

  auto again = images.prepare(img.ref(), PullOptions{});
  REQUIRE(again.ok());
  CHECK(again->cached);
  CHECK(again->disk == p->disk);
  CHECK(again->config.cmd == p->config.cmd);
}

TEST_CASE("two concurrent prepares of one image pull it once") {
  TestImage img("concurrent");
  StoreDir store;
  ImageStore images(store.root);
  Result<PreparedImage> a = makeError(ErrorCode::kInternal, "unset"), b = a;
  std::thread t1([&] { a = images.prepare(img.ref(), PullOptions{}); });
  std::thread t2([&] { b = images.prepare(img.ref(), PullOptions{}); });
  t1.join();
  t2.join();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->cached != b->cached);  // exactly one pulled
  CHECK(a->disk == b->disk);
}

TEST_CASE("a failed or killed pull leaves nothing in the cache; a missing image is kNotFound") {
  TestImage img("faults");
  StoreDir store;
  ImageStore images(store.root);
  PullOptions hurried;
  hurried.timeout = std::chrono::milliseconds(1);
  auto killed = images.prepare(img.ref(), hurried);
  REQUIRE_FALSE(killed.ok());
  CHECK(killed.error().code == ErrorCode::kUnavailable);  // a timeout is worth a retry
  CHECK(store.images().empty());

  // Leftovers of a pull killed with the plugin are cleared by the next one.
  auto ok = images.prepare(img.ref(), PullOptions{});
  REQUIRE(ok.ok());
  const std::string hex = ok->digest.substr(7);
  fs::remove_all(store.root / ("sha256-" + hex));
  fs::create_directories(store.root / (".tmp-" + hex) / "layout");
  std::ofstream(store.root / (".tmp-" + hex) / "layout" / "junk") << "half a blob";
  auto redone = images.prepare(img.ref(), PullOptions{});
  REQUIRE_MESSAGE(redone.ok(), s2z::tests::errText(redone));
  CHECK_FALSE(redone->cached);
  CHECK(store.images() == std::vector<std::string>{"sha256-" + hex});

  auto missing = images.prepare("oci:" + (img.dir / "nothing").string() + ":t", PullOptions{});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);
  CHECK(missing.error().message.find("not found") != std::string::npos);
}

TEST_CASE("image_gc removes an image only when no task holds it and none has for the delay") {
  TestImage img("collected");
  StoreDir store;
  ImageStore images(store.root);
  auto p = images.prepare(img.ref(), PullOptions{});
  REQUIRE(p.ok());
  const fs::path entry = p->disk.parent_path();

  // A task runs it: even a zero delay keeps it.
  CHECK(images.collect(std::chrono::milliseconds(0)).empty());
  CHECK(fs::exists(p->disk));
  // A second task, then the first goes: still held.
  auto second = images.prepare(img.ref(), PullOptions{});
  REQUIRE(second.ok());
  p->lease.reset();
  CHECK(images.collect(std::chrono::milliseconds(0)).empty());
  // The last task goes: kept for the delay, then removed whole.
  second->lease.reset();
  CHECK(images.collect(std::chrono::hours(1)).empty());
  CHECK(fs::exists(entry));
  CHECK(images.collect(std::chrono::milliseconds(0)) == std::vector<std::string>{p->digest});
  CHECK_FALSE(fs::exists(entry));
  CHECK(store.images().empty());
  // Used again: pulled again.
  auto again = images.prepare(img.ref(), PullOptions{});
  REQUIRE(again.ok());
  CHECK_FALSE(again->cached);
}

TEST_CASE("after a plugin restart a recovered task's lease keeps its image; others wait one delay") {
  TestImage img("restart");
  StoreDir store;
  fs::path disk;
  {
    ImageStore before(store.root);
    auto p = before.prepare(img.ref(), PullOptions{});
    REQUIRE(p.ok());
    disk = p->disk;
  }
  ImageStore after(store.root);  // the restarted plugin: no leases in memory
  CHECK(after.leaseDisk("/elsewhere/sha256-x/rootfs.ext4") == nullptr);
  auto recovered = after.leaseDisk(disk);
  REQUIRE(recovered != nullptr);
  CHECK(after.collect(std::chrono::milliseconds(0)).empty());
  recovered.reset();
  // Never leased since the restart: idle since the restart, not before.
  CHECK(after.collect(std::chrono::hours(1)).empty());
  CHECK(after.collect(std::chrono::milliseconds(0)).size() == 1);
  CHECK_FALSE(fs::exists(disk));
}

TEST_CASE("the image_gc thread removes an unused image after its delay and not before") {
  TestImage img("thread");
  StoreDir store;
  ImageStore images(store.root);
  auto p = images.prepare(img.ref(), PullOptions{});
  REQUIRE(p.ok());
  ImageCollector gc(images, std::chrono::milliseconds(600));
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  CHECK(fs::exists(p->disk));  // leased
  p->lease.reset();
  auto released = std::chrono::steady_clock::now();
  while (fs::exists(p->disk) && std::chrono::steady_clock::now() - released < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto gone = std::chrono::steady_clock::now() - released;
  CHECK_FALSE(fs::exists(p->disk));
  CHECK(gone >= std::chrono::milliseconds(600));
}

TEST_CASE("archives of both formats (docker load's and OCI's) become the same tree with the same config") {
  TestImage img("archived");
  const std::string d = img.dir.string();
  REQUIRE(sh("skopeo copy --quiet oci:" + d + "/layout:t oci-archive:" + d + "/image.oci.tar:t && skopeo copy --quiet oci:" +
             d + "/layout:t docker-archive:" + d + "/image.docker.tar:app:1") == 0);
  StoreDir store;
  ImageStore images(store.root);
  auto oci = images.prepare("oci-archive:" + d + "/image.oci.tar", PullOptions{});
  REQUIRE_MESSAGE(oci.ok(), s2z::tests::errText(oci));
  auto docker = images.prepare("docker-archive:" + d + "/image.docker.tar", PullOptions{});
  REQUIRE_MESSAGE(docker.ok(), s2z::tests::errText(docker));
  for (const auto* p : {&*oci, &*docker}) {
    CHECK(capture("debugfs -R 'cat /app/hello' " + p->disk.string() + " 2>/dev/null") == "archived\n");
    CHECK(p->config.entrypoint == std::vector<std::string>{"/bin/sh"});
    CHECK(p->config.user == "app");
    CHECK(p->config.workingDir == "/app");
  }
}

TEST_CASE("the image cache is owner-only: a private image is not readable by other host users") {
  TestImage img("private");
  StoreDir store;
  ImageStore images(store.root / "images");
  auto p = images.prepare(img.ref(), PullOptions{});
  REQUIRE(p.ok());
  auto mode = [](const fs::path& path) { return fs::status(path).permissions() & fs::perms::all; };
  CHECK(mode(store.root / "images") == fs::perms::owner_all);
  CHECK((mode(p->disk) & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
  CHECK((mode(p->disk.parent_path() / "image.json") & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
}

TEST_CASE("a cache without room for the disk refuses the image by name and keeps nothing") {
  TestImage img("no room");
  StoreDir store;
  REQUIRE(sh("mount -t tmpfs -o size=24m s2zt-small " + store.root.string()) == 0);
  struct Unmount {
    fs::path dir;
    ~Unmount() { sh("umount " + dir.string()); }
  } unmount{store.root};
  ImageStore images(store.root);
  auto p = images.prepare(img.ref(), PullOptions{});
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().code == ErrorCode::kFailedPrecondition);
  CHECK(p.error().message.find("image \"" + img.ref() + "\": not enough disk space in " + store.root.string()) !=
        std::string::npos);
  CHECK(store.images().empty());
}
