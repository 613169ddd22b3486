#include "agent/run_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "agent/instance_record_json.h"
#include "common/unique_fd.h"
#include "common/write_all.h"

namespace s2z::agent {
namespace {

constexpr size_t kMaxNameChars = 40;

}  // namespace

std::string taskIdHash(const std::string& taskId) {
  uint32_t h = 2166136261u;
  for (unsigned char c : taskId) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", h);
  return buf;
}

std::string instanceDirName(const std::string& taskName, const std::string& taskId) {
  std::string name;
  for (char c : taskName.substr(0, kMaxNameChars)) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-';
    name += keep ? c : '-';
  }
  // "." and ".." alone would be path components, not names.
  if (name.empty() || name.find_first_not_of('.') == std::string::npos) name = "task";
  return name + "-" + taskIdHash(taskId);
}

std::string tapNameFor(const std::string& taskId) { return "s2z" + taskIdHash(taskId); }

std::filesystem::path tasksDir(const std::filesystem::path& stateDir) {
  return stateDir / "tasks";
}
std::filesystem::path addressesDir(const std::filesystem::path& stateDir) {
  return stateDir / "addresses";
}
std::filesystem::path recordPath(const std::filesystem::path& runDir) {
  return runDir / "instance.json";
}
std::filesystem::path snapshotDirOf(const std::filesystem::path& runDir) {
  return runDir / "snapshot";
}

std::filesystem::path quarantineDirOf(const std::filesystem::path& runDir) {
  return runDir.parent_path().parent_path() / "quarantine";
}

std::filesystem::path qgaSocketOf(const std::filesystem::path& runDir) { return runDir / "qga.sock"; }

std::filesystem::path agentSocketOf(const std::filesystem::path& runDir) {
  return runDir / "agent.sock";
}

std::filesystem::path scratchDiskOf(const std::filesystem::path& runDir) {
  return runDir / "scratch.ext4";
}

std::filesystem::path consoleLogOf(const std::filesystem::path& runDir) {
  return runDir / "console.log";
}

Result<void> persistRecord(const InstanceRecord& record) {
  auto target = recordPath(record.runDir);
  auto temp = record.runDir / "instance.json.tmp";
  std::string text = toJson(record).dump(2) + "\n";
  // On a full disk the write fails: the previous record stays whole and no
  // half-written temp file is left behind.
  auto fail = [&](const Error& e) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    return e.wrap("persist record");
  };
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return systemError("persist record: open " + temp.string());
  if (auto w = writeAll(fd.get(), text, temp.string()); !w.ok()) return fail(w.error());
  if (::fsync(fd.get()) != 0) return fail(systemError("fsync " + temp.string()));
  fd.reset();
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    return fail(systemError("rename to " + target.string()));
  }
  // The rename itself is durable only once the directory is synced.
  UniqueFd dir(::open(record.runDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::fsync(dir.get()) != 0) {
    return systemError("persist record: fsync " + record.runDir.string());
  }
  return okResult();
}

Result<InstanceRecord> loadRecord(const std::filesystem::path& runDir) {
  auto path = recordPath(runDir);
  std::ifstream in(path);
  if (!in) {
    if (!std::filesystem::exists(path)) {
      return makeError(ErrorCode::kNotFound, "load record: " + path.string() + " does not exist");
    }
    return systemError("load record: open " + path.string());
  }
  std::stringstream text;
  text << in.rdbuf();
  auto json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "load record: " + path.string() + " is not valid JSON");
  }
  auto record = instanceRecordFromJson(json);
  if (!record.ok()) return record.error().wrap("load record: " + path.string());
  return record;
}

}  // namespace s2z::agent
