// Issue 13, case 5: state_dir on a small filesystem the test makes (tmpfs),
// filled to the last byte while a task runs. At each write point the plugin
// meets on the way to sleep (instance.json, the snapshot's device state, its
// manifest) the VM keeps serving, no partial file is left, and the task's
// events say why it did not sleep; a new task is refused at start with the
// reason. Once space is back, the next sleep and wake work.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <thread>

#include "common/unique_fd.h"
#include "tests/integration/agent_task_helpers.h"
#include "tests/reliability/reliability_support.h"

using namespace s2z;
using namespace s2z::reliability;
using namespace s2z::standin;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A tmpfs mounted over `dir` for the test's life.
class SmallFilesystem {
 public:
  SmallFilesystem(const fs::path& dir, const std::string& size) : dir_(dir) {
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) == 0;
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  uint64_t freeBytes() const {
    struct statvfs st {};
    ::statvfs(dir_.c_str(), &st);
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }
  // Takes every free byte but `leave` (again, while the plugin's own writes
  // and frees move the mark); the filler goes with release().
  bool fill(uint64_t leave) {
    if (!filler_) filler_.reset(::open((dir_ / "filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (!filler_) return false;
    // The plugin may be writing (a snapshot) meanwhile: an allocation that
    // races it gets ENOSPC and is tried again with what is left.
    for (int i = 0; i < 20; ++i) {
      uint64_t free = freeBytes();
      if (free <= leave) return true;
      struct stat st {};
      ::fstat(filler_.get(), &st);
      int rc = ::posix_fallocate(filler_.get(), st.st_size, static_cast<off_t>(free - leave));
      if (rc != 0 && rc != ENOSPC) return false;
    }
    return freeBytes() <= leave;
  }
  void release() {
    filler_.reset();
    fs::remove(dir_ / "filler");
  }

 private:
  fs::path dir_;
  bool mounted_ = false;
  UniqueFd filler_;
};

// Files a failed write could leave half-made: *.tmp anywhere in state_dir.
std::vector<std::string> partialFiles(const fs::path& root) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->path().extension() == ".tmp") found.push_back(it->path().string());
  }
  return found;
}

}  // namespace

TEST_CASE("disk full: the task keeps serving, nothing half-written is left, events say why; then it sleeps again") {
  REQUIRE(integration::agentGuestAvailable());
  ReliabilityEnv renv;
  auto& env = renv.env();
  const fs::path stateDir = env.stateDir();
  SmallFilesystem small(stateDir, "768m");
  REQUIRE(small.mounted());
  auto client = renv.loadPlugin();
  NomadClient& c = *client;
  StartedTask t = startCheckedServer(c, env, "2s");
  auto first = checkReply(env.httpGet(t.networkAddr, 8080, "/", 30s));
  REQUIRE_MESSAGE(first.ok, first.why);
  MESSAGE("state_dir: tmpfs of 768 MiB, " << small.freeBytes() / (1 << 20) << " MiB free with one task");

  // The sweep: the disk filled up to `leave` bytes short of full, then the
  // task left to go idle. With more room the sleep fails later (the record,
  // the device state stream, the manifest), or succeeds; each attempt must
  // leave the guest serving and no partial file.
  std::map<std::string, int> failedAt;
  int slept = 0;
  long counter = first.counter;
  for (uint64_t leave = 0; leave <= 96 * 1024; leave += 8 * 1024) {
    CAPTURE(leave);
    small.release();
    REQUIRE(small.fill(leave));
    size_t failedBefore = eventsStarting(c, t.allocId, "Sleep failed").size();
    size_t sleptBefore = eventsStarting(c, t.allocId, "Sleeping").size();
    REQUIRE_MESSAGE(c.waitUntil(60s, [&] {
                      return eventsStarting(c, t.allocId, "Sleep failed").size() > failedBefore ||
                             eventsStarting(c, t.allocId, "Sleeping").size() > sleptBefore;
                    }),
                    describeEvents(c, t.allocId));
    auto failed = eventsStarting(c, t.allocId, "Sleep failed");
    if (failed.size() > failedBefore) {
      const std::string& why = failed.back().message;
      CHECK_MESSAGE(why.find("No space left on device") != std::string::npos, why);
      std::string point = why.find("manifest.json") != std::string::npos   ? "manifest"
                          : why.find("instance.json") != std::string::npos ? "record"
                          : why.find("guest-ram") != std::string::npos     ? "guest RAM"
                                                                           : "device state";
      if (failedAt[point]++ == 0) MESSAGE("full " << leave << " bytes short: " << why);
    } else {
      ++slept;
    }
    // Serving either way, the same guest: its counter continues.
    auto reply = checkReply(env.httpGet(t.networkAddr, 8080, "/", 60s));
    CHECK_MESSAGE(reply.ok, reply.why);
    CHECK(reply.counter > counter);
    counter = reply.counter;
    CHECK_MESSAGE(partialFiles(stateDir).empty(), "left behind: " << partialFiles(stateDir)[0]);
  }
  for (const auto& [point, n] : failedAt) MESSAGE("sleep failed at the " << point << ": " << n << " times");
  MESSAGE("slept despite the tight disk: " << slept << " times");
  CHECK(failedAt.count("device state") == 1);
  CHECK(failedAt.size() >= 2);  // the sweep reached past the first write point
  CHECK(eventsStarting(c, t.allocId, "Woken").size() == static_cast<size_t>(slept));

  REQUIRE(small.fill(0));
  // A new task cannot get its guest RAM: refused at start, saying why, and
  // nothing of it stays.
  size_t tasksBefore = std::distance(fs::directory_iterator(stateDir / "tasks"), fs::directory_iterator());
  auto second = c.startTask(integration::agentTask("python3", {"-u", "-c", kCheckedServer}, "", ""));
  REQUIRE_FALSE(second.ok());
  MESSAGE("StartTask on a full disk: " << second.error().describe());
  CHECK(second.error().describe().find("No space left on device") != std::string::npos);
  CHECK(std::distance(fs::directory_iterator(stateDir / "tasks"), fs::directory_iterator()) ==
        static_cast<long>(tasksBefore));
  CHECK(partialFiles(stateDir).empty());

  // Space back: the next idle period's sleep works, and the wake answers.
  small.release();
  size_t sleptBefore = eventsStarting(c, t.allocId, "Sleeping").size();
  REQUIRE_MESSAGE(c.waitUntil(60s, [&] { return eventsStarting(c, t.allocId, "Sleeping").size() > sleptBefore; }),
                  describeEvents(c, t.allocId));
  auto after = checkReply(env.httpGet(t.networkAddr, 8080, "/", 60s));
  CHECK_MESSAGE(after.ok, after.why);
  CHECK(after.counter > counter);
  REQUIRE(c.waitUntil(30s, [&] { return eventsStarting(c, t.allocId, "Woken").size() == sleptBefore + 1; }));
  for (const auto& woken : eventsStarting(c, t.allocId, "Woken")) CHECK(woken.annotations.count("cold_boot") == 0);
  MESSAGE("after space came back: slept and woke, guest counter " << first.counter << " -> " << after.counter);
  REQUIRE(c.stopTask(t.id, 10s).ok());
  integration::waitExit(c, t.id);
  integration::destroyAndCheckClean(c, env, t.id);
  client.reset();  // the plugin goes before its state_dir
}
