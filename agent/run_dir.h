// Where an instance lives on disk and how its record is persisted.
//
//   <state_dir>/tasks/<name>/        the instance runDir: QEMU sockets, guest RAM
//                                    file, VMM log, snapshot/, instance.json;
//                                    agent tasks also agent.sock (the guest
//                                    channel), scratch.ext4, console.log
//   <state_dir>/addresses/           the address pool's lease files
//
// <name> is the sanitized task name plus 8 hex digits of a hash of the task
// id; the tap is "s2z" plus the same 8 hex digits (11 characters, under
// IFNAMSIZ). Nomad stores the task handle only once (StartTask), so the
// current record is rewritten to instance.json on every state change and
// recovery prefers it over the handle's copy.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "agent/instance.h"
#include "common/result.h"

namespace s2z::agent {

// 32-bit FNV-1a of the task id as 8 lowercase hex digits. Stable across
// builds and processes (it names files that outlive the plugin).
std::string taskIdHash(const std::string& taskId);

// "<sanitized task name>-<hash>": [a-zA-Z0-9_.-] kept, anything else becomes
// '-', at most 40 characters of the name, "task" when empty.
std::string instanceDirName(const std::string& taskName, const std::string& taskId);

// "s2z<hash>".
std::string tapNameFor(const std::string& taskId);

std::filesystem::path tasksDir(const std::filesystem::path& stateDir);
std::filesystem::path addressesDir(const std::filesystem::path& stateDir);
std::filesystem::path recordPath(const std::filesystem::path& runDir);
std::filesystem::path snapshotDirOf(const std::filesystem::path& runDir);
// <state_dir>/quarantine, for a run dir <state_dir>/tasks/<name>: snapshots
// refused at restore, kept for inspection (agent/snapshot_quarantine.h).
std::filesystem::path quarantineDirOf(const std::filesystem::path& runDir);
std::filesystem::path agentSocketOf(const std::filesystem::path& runDir);
// The host end of an agent-less guest's qemu-guest-agent port.
std::filesystem::path qgaSocketOf(const std::filesystem::path& runDir);
std::filesystem::path scratchDiskOf(const std::filesystem::path& runDir);
std::filesystem::path consoleLogOf(const std::filesystem::path& runDir);

// Writes the record as JSON to runDir/instance.json atomically: temp file,
// fsync, rename, fsync of the directory. Fails with kSystem (errno) naming
// the file; the previous record stays intact then.
Result<void> persistRecord(const InstanceRecord& record);

// Reads runDir/instance.json. kNotFound if absent, kInvalidArgument if it
// does not parse or decode (the message says which field).
Result<InstanceRecord> loadRecord(const std::filesystem::path& runDir);

}  // namespace s2z::agent
