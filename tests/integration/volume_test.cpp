// Volumes (Nomad TaskConfig mounts) in agent tasks: a block device and a
// disk image file become virtio-blk disks the guest mounts at task_path,
// read-write or read-only; what the workload writes is on the device after
// the task (and across a sleep); a directory is refused at StartTask.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/agent_task_helpers.h"
#include "tests/integration/test_env.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

// An ext4 image made by mke2fs -d from one file, in a directory removed
// with it.
class Ext4Image {
 public:
  Ext4Image(const std::string& fileName, const std::string& content) {
    char tmpl[] = "/tmp/s2zt-vol-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    std::filesystem::create_directory(dir_ + "/content");
    std::ofstream(dir_ + "/content/" + fileName) << content;
    auto made = runCommand({"mke2fs", "-q", "-F", "-t", "ext4", "-d", dir_ + "/content", path(), "16M"});
    REQUIRE_MESSAGE(made.exitCode == 0, made.output);
  }
  ~Ext4Image() { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_ + "/volume.img"; }
  std::string dir() const { return dir_; }
  // A file of the filesystem, read with debugfs (no mount needed); empty if
  // there is none (debugfs' banner and errors go to stderr, dropped).
  std::string read(const std::string& file) const {
    return runCommand({"sh", "-c", "debugfs -R 'cat " + file + "' " + path() + " 2>/dev/null"}).output;
  }

 private:
  std::string dir_;
};

// The image as a loop block device, detached at the end.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& image) {
    auto attached = runCommand({"losetup", "--find", "--show", image});
    REQUIRE_MESSAGE(attached.exitCode == 0, attached.output);
    device_ = attached.output.substr(0, attached.output.find('\n'));
  }
  ~LoopDevice() { runCommand({"losetup", "--detach", device_}); }
  const std::string& device() const { return device_; }

 private:
  std::string device_;
};

}  // namespace

TEST_CASE("a block device and an image file are mounted at their task_path, read-write and read-only; writes reach the device, also across a sleep") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  Ext4Image data("hello.txt", "hello from the host\n");
  Ext4Image seed("seed.txt", "seed data\n");
  LoopDevice loop(data.path());

  const std::string mounts = "mounts:\n"
                             "  - { host_path: " + loop.device() + ", task_path: /data }\n"
                             "  - { host_path: " + seed.path() + ", task_path: /srv/seed, readonly: true }\n";
  const char* script =
      "cat /data/hello.txt; cat /srv/seed/seed.txt; echo written > /data/out.txt; "
      "touch /srv/seed/x 2>/dev/null || echo read-only-refused; sync; echo ready; exec python3 -u -c \"$0\"";
  auto started = c.startTask(agentTask("sh", {"-c", script, kServer}, mounts,
                                       "  scale_to_zero: { enabled: true, idle_timeout: \"2s\" }\n"));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  CHECK(outputHas(c, started->id, "hello from the host"));
  CHECK(outputHas(c, started->id, "seed data"));
  CHECK(outputHas(c, started->id, "read-only-refused"));
  CHECK(outputHas(c, started->id, "ready"));
  REQUIRE(env.waitHttp(started->networkAddr, 8080, 60s));

  // Through a snapshot and restore the disk stays attached and consistent.
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, started->allocId, "sleeping") >= 1; }));
  auto call = c.execStreaming(started->id, {"sh", "-c", "cat /data/out.txt; echo again >> /data/out.txt; sync"}, false);
  REQUIRE(call.ok());
  ExecStreamOutcome out = (*call)->waitEnd(30s);
  CHECK(out.stdoutText == "written\n");
  CHECK(out.exitCode == 0);

  stopAndDestroy(c, env, started->id, 10s);
  CHECK(data.read("/out.txt") == "written\nagain\n");
  CHECK(seed.read("/seed.txt") == "seed data\n");
  CHECK(seed.read("/x").empty());
}

TEST_CASE("a directory as a mount, or a mount in an agent-less task, fails StartTask naming it") {
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  Ext4Image image("f", "x");
  auto dir = c.startTask(agentTask("true", {}, "mounts: [ { host_path: " + image.dir() + ", task_path: /data } ]\n"));
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.error().message.find("mounts[0] (task_path /data): host_path " + image.dir() + " is a directory") !=
        std::string::npos);
  auto reserved = c.startTask(agentTask("true", {}, "mounts: [ { host_path: " + image.path() + ", task_path: /secrets/x } ]\n"));
  REQUIRE_FALSE(reserved.ok());
  CHECK(reserved.error().message.find("must not be /, nor under /local") != std::string::npos);
  TaskFile agentless = webTask();
  agentless.mounts.push_back({image.path(), "/data", false});
  auto noAgent = c.startTask(agentless);
  REQUIRE_FALSE(noAgent.ok());
  CHECK(noAgent.error().message.find("volumes need the guest agent") != std::string::npos);
  CHECK(env.onlyProcessLeft(c.process().pid(), 5s));
}
