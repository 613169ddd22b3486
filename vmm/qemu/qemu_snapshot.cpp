// QemuVmm: sleep (pause + device-state snapshot + exit), resume after an
// interrupted sleep, standby, restore.
//
// The snapshot is a QEMU migration stream of device state only: guest RAM is a
// shared file (memory-backend-file,share=on) skipped with x-ignore-shared, and
// it stays untouched in runDir until restore. QEMU writes the stream into a
// file we open and hand over with getfd ("fd:" migration) rather than
// `exec:cat > file`: with exec, a failing cat (disk full, read-only dir) can go
// unnoticed once the ~60 KB stream fits the pipe buffer, while QEMU's own
// writes to our fd fail the migration, and the VM is resumed.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/failpoint.h"
#include "vmm/guest_ram_file.h"
#include "vmm/guest_ram_release.h"
#include "vmm/qemu/qemu_command_line.h"
#include "vmm/qemu/qemu_vmm.h"

namespace s2z::vmm::qemu {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kStateFile[] = "state";
constexpr char kStateTemp[] = "state.tmp";
constexpr char kFdName[] = "s2z-snapshot";
// The default max-bandwidth (128 MiB/s) throttles even a stopped VM's stream.
constexpr uint64_t kMaxBandwidth = uint64_t{1} << 40;

Result<void> setIgnoreShared(QmpClient& q, std::chrono::milliseconds timeout = 10s) {
  nlohmann::json caps = {{"capabilities", {{{"capability", "x-ignore-shared"}, {"state", true}}}}};
  auto r = q.execute("migrate-set-capabilities", caps, timeout);
  if (!r.ok()) return r.error();
  return okResult();
}

Result<void> fsyncDir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) return systemError("fsync " + dir.string());
  return okResult();
}

// The snapshot dir, owner-only like the run dir around it: made with its
// mode (never a moment with a wider one); one an older version left wider is
// tightened (its parent, the run dir, is already owner-only). Missing parents
// are made as before.
Result<void> makeSnapshotDir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return okResult();
  if (errno == ENOENT) {
    std::error_code ec;
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) return Error{ErrorCode::kSystem, ec.value(), "create " + dir.parent_path().string()};
    if (::mkdir(dir.c_str(), 0700) == 0) return okResult();
  }
  if (errno != EEXIST) return systemError("create " + dir.string());
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return systemError("stat " + dir.string());
  if (!S_ISDIR(st.st_mode)) {
    return Error{ErrorCode::kSystem, ENOTDIR, "create " + dir.string() + ": not a directory"};
  }
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
    return systemError("chmod 0700 " + dir.string());
  }
  return okResult();
}

// What is left of a deadline for one QMP call; at least 1 ms, so a call made
// just after the deadline still reports kTimeout rather than blocking.
std::chrono::milliseconds remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

Result<void> writeManifest(const std::filesystem::path& snapshotDir, const std::filesystem::path& ram,
                           const SnapshotStamp& stamp) {
  SnapshotManifest manifest{stamp, {}};
  auto state = describeSnapshotFile(snapshotDir, kStateFile, FileCheck::kContent);
  if (!state.ok()) return state.error();
  auto memory = describeSnapshotFile(snapshotDir, ram, FileCheck::kIdentity);
  if (!memory.ok()) return memory.error();
  manifest.files = {*state, *memory};
  return writeSnapshotManifest(snapshotDir, manifest);
}

// QEMU's own message for a stream that hit a full disk is sometimes just
// "migration failed": say what the filesystem has left when it is nearly full.
Error withFreeSpace(const Error& e, const std::filesystem::path& dir) {
  constexpr uint64_t kNearlyFull = 1 << 20;
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return e;
  uint64_t free = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free >= kNearlyFull || e.message.find(std::strerror(ENOSPC)) != std::string::npos) return e;
  return Error{e.code, ENOSPC,
               e.message + " (" + dir.string() + ": " + std::to_string(free) + " bytes free: " +
                   std::strerror(ENOSPC) + ")"};
}

// True once a migration can no longer change anything: never started,
// completed, failed or cancelled (QEMU's MigrationStatus).
bool migrationFinished(const std::string& status) {
  return status == "none" || status == "completed" || status == "failed" ||
         status == "cancelled";
}

}  // namespace

Result<void> QemuVmm::waitMigration(bool incoming, Clock::time_point deadline) {
  for (;;) {
    auto q = qmp();
    if (!q.ok()) return q.error();
    auto info = (*q)->execute("query-migrate", nlohmann::json::object(), remaining(deadline));
    if (!info.ok()) {
      // An incoming QEMU that fails to load the stream exits on its own.
      if (incoming && (info.error().code == ErrorCode::kUnavailable || !process_.running())) {
        process_.waitExit(2s);
        return makeError(ErrorCode::kVmmError, "qemu exited while loading the snapshot: " + logTail());
      }
      return info.error();
    }
    std::string status = info->value("status", "");
    if (status == "completed") return okResult();
    if (status == "failed" || status == "cancelled") {
      std::string desc = info->value("error-desc", "");
      return makeError(ErrorCode::kVmmError,
                       "migration " + status + (desc.empty() ? "" : ": " + desc));
    }
    if (Clock::now() > deadline) return makeError(ErrorCode::kTimeout, "migration still " + status);
    std::this_thread::sleep_for(1ms);
  }
}

Result<SnapshotInfo> QemuVmm::sleep(const std::filesystem::path& snapshotDir,
                                    const SnapshotStamp& stamp) {
  if (!process_.valid() || standby_) {
    return makeError(ErrorCode::kFailedPrecondition, "sleep: no running vm for " + config_.name);
  }
  // Everything that can fail, on the host or in QEMU's migration settings,
  // happens while the VM still runs: the paused window holds only `stop`, the
  // stream, the fsyncs and the exit.
  lightPaused_ = false;  // a migration may run from here on
  S2Z_TRY(makeSnapshotDir(snapshotDir), "sleep");
  auto temp = snapshotDir / kStateTemp;
  UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return systemError("sleep: create " + temp.string());
  auto q = qmp();
  if (!q.ok()) return q.error().wrap("sleep");
  QmpClient& qmp = **q;
  auto abandon = [&](const Error& e, bool fdPassed) -> Error {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    if (fdPassed) (void)qmp.execute("closefd", {{"fdname", kFdName}});
    return e.wrap("sleep " + config_.name);
  };
  if (auto r = setIgnoreShared(qmp); !r.ok()) return abandon(r.error(), false);
  if (auto r = qmp.execute("migrate-set-parameters", {{"max-bandwidth", kMaxBandwidth}}); !r.ok()) {
    return abandon(r.error(), false);
  }
  if (auto r = qmp.sendFd(kFdName, out.get()); !r.ok()) return abandon(r.error(), false);

  // A light sleep going deeper finds the guest paused, and a failure leaves
  // it so.
  auto status = qmp.execute("query-status");
  if (!status.ok()) return abandon(status.error(), true);
  const bool wasRunning = status->value("running", false);
  auto started = Clock::now();
  if (auto r = qmp.execute("stop"); !r.ok()) return abandon(r.error(), true);
  auto paused = Clock::now();
  // From here a failure resumes a VM that ran. A started migration owns (and
  // closes) the fd it was given, so only a refused `migrate` leaves it to closefd.
  auto resume = [&](const Error& e, bool fdPassed) -> Error {
    Error wrapped = abandon(e, fdPassed);
    if (!wasRunning) return wrapped;
    auto cont = qmp.execute("cont");
    if (!cont.ok()) {
      spdlog::error("vmm {}: resume after failed sleep: {}", config_.name, cont.error().describe());
    }
    return wrapped;
  };
  if (auto r = qmp.execute("migrate", {{"uri", std::string("fd:") + kFdName}}); !r.ok()) {
    return resume(r.error(), true);
  }
  failpoint("snapshot-streaming");
  if (auto r = waitMigration(false, Clock::now() + 60s); !r.ok()) {
    return resume(withFreeSpace(r.error(), snapshotDir), false);
  }
  auto streamed = Clock::now();
  // Durable before the VM goes away: a failure here still leaves it running.
  if (::fsync(out.get()) != 0) return resume(systemError("fsync " + temp.string()), false);
  struct stat st {};
  ::fstat(out.get(), &st);
  out.reset();
  failpoint("snapshot-written-not-renamed");
  if (::rename(temp.c_str(), (snapshotDir / kStateFile).c_str()) != 0) {
    return resume(systemError("rename " + temp.string()), false);
  }
  if (auto r = fsyncDir(snapshotDir); !r.ok()) return resume(r.error(), false);
  // The RAM the state belongs to, durable too, then the manifest that pairs
  // them. Until the manifest is there the state is not a snapshot: a
  // restore refuses it, and a failure here still resumes the guest.
  const auto ram = qemuPaths(config_.runDir).guestRam;
  if (auto r = syncGuestRam(ram); !r.ok()) return resume(r.error(), false);
  if (auto r = writeManifest(snapshotDir, ram, stamp); !r.ok()) return resume(r.error(), false);
  auto durable = Clock::now();

  // SIGKILL rather than `quit`: after a completed migration QEMU's own
  // cleanup saves nothing (device state is in our fsynced file, guest RAM in
  // the shared file the kernel keeps, and completing the migration flushed and
  // inactivated the disks) and took ~9 ms of the paused window here.
  qmp_.reset();
  (void)process_.kill();  // reaps
  auto exited = Clock::now();
  failpoint("vmm-exited");
  auto us = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d);
  };
  // Deep sleep holds no host memory: the RAM file's pages, dirty until now,
  // are written back and dropped (a restore maps them back on demand).
  uint64_t dropped = 0;
  if (auto released = dropGuestRamCache(qemuPaths(config_.runDir).guestRam); released.ok()) {
    dropped = released->dropped();
  } else {
    spdlog::warn("vmm {}: guest RAM stays cached: {}", config_.name, released.error().describe());
  }
  auto dropTime = Clock::now();
  spdlog::info("vmm {}: snapshot {} bytes in {} us (pause {}, stream {}, fsync {}, exit {}); "
               "{} KiB of RAM cache dropped in {} us",
               config_.name, st.st_size, us(exited - started).count(), us(paused - started).count(),
               us(streamed - paused).count(), us(durable - streamed).count(),
               us(exited - durable).count(), dropped / 1024, us(dropTime - exited).count());
  return SnapshotInfo{snapshotDir, static_cast<uint64_t>(st.st_size), us(exited - started), dropped};
}

Result<void> QemuVmm::resume() {
  if (!process_.valid() || standby_) {
    return makeError(ErrorCode::kFailedPrecondition, "resume: no running vm for " + config_.name);
  }
  auto q = qmp();
  if (!q.ok()) return q.error().wrap("resume " + config_.name);
  QmpClient& qmp = **q;
  if (lightPaused_) {
    // The light wake: this object stopped the guest and nothing ran since.
    if (auto r = qmp.execute("cont"); !r.ok()) return r.error().wrap("resume " + config_.name);
    lightPaused_ = false;
    return okResult();
  }
  auto status = qmp.execute("query-status");
  if (!status.ok()) return status.error().wrap("resume " + config_.name);
  if (status->value("running", false)) return okResult();
  // The stream goes to a regular file, so an unfinished one ends quickly
  // once cancelled; `cont` is refused while it runs.
  auto migration = qmp.execute("query-migrate");
  if (!migration.ok()) return migration.error().wrap("resume " + config_.name);
  if (!migrationFinished(migration->value("status", "none"))) {
    if (auto r = qmp.execute("migrate_cancel"); !r.ok()) return r.error().wrap("resume");
    auto ended = waitMigration(false, Clock::now() + 10s);
    if (!ended.ok() && ended.error().code == ErrorCode::kTimeout) return ended.error().wrap("resume");
  }
  if (auto r = qmp.execute("cont"); !r.ok()) return r.error().wrap("resume " + config_.name);
  spdlog::info("vmm {}: resumed a guest that was {}", config_.name, status->value("status", "paused"));
  return okResult();
}

Result<void> QemuVmm::prepareRestore(const VmConfig& config) {
  if (process_.valid()) {
    if (standby_) return okResult();
    return makeError(ErrorCode::kFailedPrecondition, "prepare restore: vm " + config.name + " is running");
  }
  // Waiting for the standby's QMP is bounded as a boot's: nobody waits on it yet.
  S2Z_TRY(launch(config, /*incoming=*/true, Clock::now() + 30s), "prepare restore " + config.name);
  return okResult();
}

Result<void> QemuVmm::restore(const VmConfig& config, const std::filesystem::path& snapshotDir,
                              const SnapshotStamp& expected) {
  // The watchdog: everything below, from the QEMU start to `cont`, within
  // restoreTimeout. Each QMP call gets what is left; at the end the VMM is
  // killed (SIGKILL also ends a stopped process) and the caller cold boots.
  const auto deadline = Clock::now() + config.restoreTimeout;
  auto state = snapshotDir / kStateFile;
  if (process_.valid() && !standby_) {
    return makeError(ErrorCode::kFailedPrecondition, "restore: vm " + config.name + " is running");
  }
  auto fail = [&](const Error& e) -> Error {
    killAndForget();
    return e.wrap("restore " + config.name);
  };
  // A standby adopted from a plugin that died mid-restore may be past the
  // load ("paused") or running the guest already: only the rest is done.
  std::string standbyStatus;
  if (process_.valid()) {
    auto q = qmp();
    if (!q.ok()) return fail(q.error());
    auto status = (*q)->execute("query-status", nlohmann::json::object(), remaining(deadline));
    if (!status.ok()) return fail(status.error());
    standbyStatus = status->value("status", "");
    if (standbyStatus == "running") {
      standby_ = false;
      return okResult();
    }
  }
  const bool loaded = !standbyStatus.empty() && standbyStatus != "inmigrate";
  UniqueFd in;
  if (!loaded) {
    if (!std::filesystem::exists(state)) {
      killAndForget();
      return makeError(ErrorCode::kNotFound, "restore " + config.name + ": no snapshot at " + state.string());
    }
    if (auto checked = verifySnapshot(snapshotDir, expected); !checked.ok()) return fail(checked.error());
    in.reset(::open(state.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return fail(systemError("open " + state.string()));
  }
  const bool spawned = !process_.valid();
  auto verified = Clock::now();
  if (spawned) S2Z_TRY(launch(config, /*incoming=*/true, deadline), "restore " + config.name);
  auto ready = Clock::now();
  failpoint("restore-started");
  if (auto r = loadSnapshot(loaded ? -1 : in.get(), deadline); !r.ok()) return fail(r.error());
  standby_ = false;
  auto resumed = Clock::now();
  auto us = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  };
  spdlog::info("vmm {}: restored in {} us ({} {} us, load and cont {} us)", config.name,
               us(resumed - (deadline - config.restoreTimeout)),
               spawned ? "qemu start to QMP" : "standby", us(ready - verified), us(resumed - ready));
  return okResult();
}

Result<void> QemuVmm::loadSnapshot(int stateFd, Clock::time_point deadline) {
  auto q = qmp();
  if (!q.ok()) return q.error();
  QmpClient& qmp = **q;
  if (stateFd >= 0) {
    if (auto r = setIgnoreShared(qmp, remaining(deadline)); !r.ok()) return r.error();
    if (auto r = qmp.sendFd(kFdName, stateFd, remaining(deadline)); !r.ok()) return r.error();
    if (auto r = qmp.execute("migrate-incoming", {{"uri", std::string("fd:") + kFdName}},
                             remaining(deadline));
        !r.ok()) {
      return r.error();
    }
  }
  S2Z_TRY(waitMigration(true, deadline), "load snapshot");
  // From `cont` on the guest writes its RAM: this snapshot no longer matches it.
  S2Z_TRY(markRamInUse(qemuPaths(config_.runDir).guestRam), "restore");
  if (auto r = qmp.execute("cont", nlohmann::json::object(), remaining(deadline)); !r.ok()) return r.error();
  return okResult();
}

std::vector<std::filesystem::path> QemuVmm::snapshotFiles(const VmConfig& config,
                                                          const std::filesystem::path& snapshotDir) const {
  return {snapshotDir, qemuPaths(config.runDir).guestRam};
}

}  // namespace s2z::vmm::qemu
