#include "agent/instance_record_json.h"
#include "tests/err_text.h"

#include <doctest/doctest.h>

namespace s2z::agent {
namespace {

InstanceRecord sampleRecord() {
  InstanceRecord r;
  r.spec.taskId = "c0ffee/web/1";
  r.spec.name = "web-1a2b3c4d";
  r.spec.hypervisor = vmm::Hypervisor::kCloudHypervisor;
  r.spec.binary = "/usr/bin/cloud-hypervisor";
  r.spec.accelerator = vmm::Accelerator::kKvm;
  r.spec.kernel = "/guest/vmlinuz";
  r.spec.initrd = "/guest/initrd.img";
  r.spec.rootfs = "";
  r.spec.cmdline = "console=ttyS0 quiet";
  r.spec.vcpus = 2;
  r.spec.memoryMib = 512;
  r.spec.stdoutPath = "/alloc/logs/.web.stdout.fifo";
  r.spec.stderrPath = "/alloc/logs/.web.stderr.fifo";
  r.spec.scaleToZero = true;
  r.spec.idleTimeout = std::chrono::milliseconds(1500);
  r.network = {"s2z1a2b3c4d", 42, "10.89.0.7", "10.89.0.1", 24, "52:54:00:0a:59:00"};
  r.runDir = "/var/lib/s2z-kata/tasks/web-1a2b3c4d";
  r.state = InstanceState::kSleeping;
  r.vmm = {12345, 987654321012ULL};
  r.standby = true;
  r.logHolder = {12300, 987654320000ULL};
  r.snapshotDir = "/var/lib/s2z-kata/tasks/web-1a2b3c4d/snapshot";
  r.snapshotGeneration = 12;
  r.startedAtUnixNs = 1764000000123456789LL;
  return r;
}

void checkEqual(const InstanceRecord& a, const InstanceRecord& b) {
  CHECK(a.spec.taskId == b.spec.taskId);
  CHECK(a.spec.name == b.spec.name);
  CHECK(a.spec.hypervisor == b.spec.hypervisor);
  CHECK(a.spec.binary == b.spec.binary);
  CHECK(a.spec.accelerator == b.spec.accelerator);
  CHECK(a.spec.kernel == b.spec.kernel);
  CHECK(a.spec.initrd == b.spec.initrd);
  CHECK(a.spec.rootfs == b.spec.rootfs);
  CHECK(a.spec.cmdline == b.spec.cmdline);
  CHECK(a.spec.vcpus == b.spec.vcpus);
  CHECK(a.spec.memoryMib == b.spec.memoryMib);
  CHECK(a.spec.stdoutPath == b.spec.stdoutPath);
  CHECK(a.spec.stderrPath == b.spec.stderrPath);
  CHECK(a.spec.scaleToZero == b.spec.scaleToZero);
  CHECK(a.spec.idleTimeout == b.spec.idleTimeout);
  CHECK(a.spec.sleepTier == b.spec.sleepTier);
  CHECK(a.spec.deepSleepAfter == b.spec.deepSleepAfter);
  CHECK(a.spec.cgroup == b.spec.cgroup);
  CHECK(a.spec.cgroupScope == b.spec.cgroupScope);
  CHECK(a.network.tapName == b.network.tapName);
  CHECK(a.network.ifindex == b.network.ifindex);
  CHECK(a.network.address == b.network.address);
  CHECK(a.network.gateway == b.network.gateway);
  CHECK(a.network.prefixLength == b.network.prefixLength);
  CHECK(a.network.mac == b.network.mac);
  CHECK(a.runDir == b.runDir);
  CHECK(a.state == b.state);
  CHECK(a.vmm.pid == b.vmm.pid);
  CHECK(a.vmm.startTime == b.vmm.startTime);
  CHECK(a.standby == b.standby);
  CHECK(a.sleepingTier == b.sleepingTier);
  CHECK(a.logHolder.pid == b.logHolder.pid);
  CHECK(a.logHolder.startTime == b.logHolder.startTime);
  CHECK(a.snapshotDir == b.snapshotDir);
  CHECK(a.snapshotGeneration == b.snapshotGeneration);
  CHECK(a.startedAtUnixNs == b.startedAtUnixNs);
}

// A version-8 record as a version-7 plugin wrote it: no cgroup scope.
void dropCgroupScope(nlohmann::json& j) { j["spec"].erase("cgroupScope"); }

// ... as a version-6 plugin wrote it: no light sleep cache either.
void dropLightSleepCache(nlohmann::json& j) {
  dropCgroupScope(j);
  j["spec"].erase("lightSleepCache");
}

// ... as a version-5 plugin wrote it: no snapshot generation either.
void dropSnapshotGeneration(nlohmann::json& j) {
  dropLightSleepCache(j);
  j.erase("snapshotGeneration");
}

// ... as a version-4 plugin wrote it: no sleep tiers.
void dropSleepTiers(nlohmann::json& j) {
  dropSnapshotGeneration(j);
  j["spec"].erase("sleepTier");
  j["spec"].erase("deepSleepAfterMs");
  j["spec"].erase("cgroup");
  j["spec"].erase("group");
  j.erase("sleepingTier");
}

TEST_CASE("instance record survives a JSON round trip through text") {
  InstanceRecord in = sampleRecord();
  auto text = toJson(in).dump();
  auto out = instanceRecordFromJson(nlohmann::json::parse(text));
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  checkEqual(in, *out);
}

TEST_CASE("a version 1 record from a wave-1 plugin still decodes: its console is the stdout FIFO") {
  auto j = toJson(sampleRecord());
  j["version"] = 1;
  dropSleepTiers(j);
  j["spec"].erase("stdoutPath");
  j["spec"].erase("stderrPath");
  j["spec"]["consolePath"] = "/alloc/logs/.web.stdout.fifo";
  j.erase("logHolder");
  j["spec"].erase("workload");
  j["spec"].erase("scratchMib");
  j.erase("workloadExit");
  auto out = instanceRecordFromJson(j);
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  CHECK(out->spec.stdoutPath == "/alloc/logs/.web.stdout.fifo");
  CHECK(out->spec.stderrPath.empty());
  CHECK(out->logHolder.pid == 0);
  // ...and a version 2 record must name its paths and holder.
  j["version"] = 2;
  auto strict = instanceRecordFromJson(j);
  REQUIRE_FALSE(strict.ok());
  CHECK(strict.error().message.find("spec.stdoutPath: missing") != std::string::npos);
}

TEST_CASE("an agent task's workload and its reported exit round trip; a version 2 record has neither") {
  InstanceRecord in = sampleRecord();
  WorkloadSpec w;
  w.argv = {"python3", "-c", "print('hi')"};
  w.env = {"A=1", "B=two words"};
  w.workingDir = "/srv";
  w.user = "1000:1000";
  w.hostname = "web-1";
  w.dnsServers = {"10.0.0.2"};
  w.dnsSearches = {"service.consul"};
  w.dnsOptions = {"ndots:2"};
  w.wakeToStop = false;
  w.readonlyRoot = true;
  w.stopSignal = 3;
  in.spec.workload = w;
  in.spec.scratchMib = 512;
  in.workloadExit = WorkloadExit{true, 137, 9, true};
  auto out = instanceRecordFromJson(nlohmann::json::parse(toJson(in).dump()));
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  REQUIRE(out->spec.workload);
  CHECK(out->spec.workload->argv == w.argv);
  CHECK(out->spec.workload->env == w.env);
  CHECK(out->spec.workload->workingDir == "/srv");
  CHECK(out->spec.workload->user == "1000:1000");
  CHECK(out->spec.workload->hostname == "web-1");
  CHECK(out->spec.workload->dnsServers == w.dnsServers);
  CHECK(out->spec.workload->dnsSearches == w.dnsSearches);
  CHECK(out->spec.workload->dnsOptions == w.dnsOptions);
  CHECK_FALSE(out->spec.workload->wakeToStop);
  CHECK(out->spec.workload->readonlyRoot);
  CHECK(out->spec.workload->stopSignal == 3);
  CHECK(out->spec.scratchMib == 512);

  // A version 3 record (before images) has neither readonlyRoot nor stopSignal.
  auto v3 = toJson(in);
  v3["version"] = 3;
  dropSleepTiers(v3);
  v3["spec"]["workload"].erase("readonlyRoot");
  v3["spec"]["workload"].erase("stopSignal");
  auto older = instanceRecordFromJson(v3);
  REQUIRE_MESSAGE(older.ok(), s2z::tests::errText(older));
  CHECK_FALSE(older->spec.workload->readonlyRoot);
  CHECK(older->spec.workload->stopSignal == 0);
  CHECK(out->workloadExit.reported);
  CHECK(out->workloadExit.exitCode == 137);
  CHECK(out->workloadExit.signal == 9);
  CHECK(out->workloadExit.oomKilled);

  auto v2 = toJson(sampleRecord());
  v2["version"] = 2;
  dropSleepTiers(v2);
  v2["spec"].erase("workload");
  v2["spec"].erase("scratchMib");
  v2.erase("workloadExit");
  auto old = instanceRecordFromJson(v2);
  REQUIRE_MESSAGE(old.ok(), s2z::tests::errText(old));
  CHECK_FALSE(old->spec.workload);
  CHECK_FALSE(old->workloadExit.reported);
}

TEST_CASE("sleep tiers round trip; a version 4 record slept deep and never changes tier") {
  InstanceRecord in = sampleRecord();
  in.spec.sleepTier = SleepTier::kLight;
  in.spec.deepSleepAfter = std::chrono::minutes(7);
  in.sleepingTier = SleepTier::kLight;
  in.spec.cgroup = "/sys/fs/cgroup/nomad.slice/share.slice/a.web.scope";
  in.spec.cgroupScope = "a.web";
  in.spec.group.netnsPath = "/var/run/netns/a";
  in.spec.group.hostPorts = {{"192.168.1.5", 28080}};
  auto out = instanceRecordFromJson(nlohmann::json::parse(toJson(in).dump()));
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  CHECK(out->spec.sleepTier == SleepTier::kLight);
  CHECK(out->spec.deepSleepAfter == std::chrono::minutes(7));
  CHECK(out->sleepingTier == SleepTier::kLight);
  CHECK(out->spec.cgroup == in.spec.cgroup);
  CHECK(out->spec.cgroupScope == "a.web");
  // A version 7 record has no scope: its task lived in a v2 scope only.
  auto v7 = toJson(in);
  v7["version"] = 7;
  dropCgroupScope(v7);
  auto older = instanceRecordFromJson(v7);
  REQUIRE_MESSAGE(older.ok(), s2z::tests::errText(older));
  CHECK(older->spec.cgroup == in.spec.cgroup);
  CHECK(older->spec.cgroupScope.empty());
  CHECK(out->spec.group.netnsPath == "/var/run/netns/a");
  REQUIRE(out->spec.group.hostPorts.size() == 1);
  CHECK(out->spec.group.hostPorts[0].hostIp == "192.168.1.5");
  CHECK(out->spec.group.hostPorts[0].port == 28080);

  auto v4 = toJson(in);
  v4["version"] = 4;
  dropSleepTiers(v4);
  auto old = instanceRecordFromJson(v4);
  REQUIRE_MESSAGE(old.ok(), s2z::tests::errText(old));
  CHECK(old->spec.sleepTier == SleepTier::kDeep);
  CHECK(old->spec.deepSleepAfter.count() == 0);
  CHECK(old->sleepingTier == SleepTier::kDeep);

  auto bad = toJson(in);
  bad["sleepingTier"] = 3;
  auto refused = instanceRecordFromJson(bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message == "instance record: sleepingTier: out of range");
}

TEST_CASE("the light sleep's page cache round trips; a version 6 record keeps it; an unknown value is refused") {
  InstanceRecord in = sampleRecord();
  for (auto cache : {vmm::LightSleepCache::kKeep, vmm::LightSleepCache::kDrop, vmm::LightSleepCache::kMapped}) {
    in.spec.lightSleepCache = cache;
    auto out = instanceRecordFromJson(nlohmann::json::parse(toJson(in).dump()));
    REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
    CHECK(out->spec.lightSleepCache == cache);
  }
  in.spec.lightSleepCache = vmm::LightSleepCache::kDrop;

  auto v6 = toJson(in);
  v6["version"] = 6;
  dropLightSleepCache(v6);
  auto old = instanceRecordFromJson(v6);
  REQUIRE_MESSAGE(old.ok(), s2z::tests::errText(old));
  CHECK(old->spec.lightSleepCache == vmm::LightSleepCache::kKeep);

  auto bad = toJson(in);
  bad["spec"]["lightSleepCache"] = "evict";
  auto refused = instanceRecordFromJson(bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("spec.lightSleepCache: unknown value \"evict\"") != std::string::npos);
}

TEST_CASE("default record round trips too") {
  auto out = instanceRecordFromJson(toJson(InstanceRecord{}));
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  checkEqual(InstanceRecord{}, *out);
}

TEST_CASE("missing field is an error naming it") {
  auto j = toJson(sampleRecord());
  j["spec"].erase("idleTimeoutMs");
  auto out = instanceRecordFromJson(j);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == ErrorCode::kInvalidArgument);
  CHECK(out.error().message == "instance record: spec.idleTimeoutMs: missing");
}

TEST_CASE("unknown field is an error naming it") {
  auto j = toJson(sampleRecord());
  j["network"]["vlan"] = 7;
  auto out = instanceRecordFromJson(j);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().message == "instance record: network.vlan: unknown field");
}

TEST_CASE("a version 5 record (no snapshot manifests yet) decodes with generation 0: restored unchecked") {
  auto j = toJson(sampleRecord());
  j["version"] = 5;
  dropSnapshotGeneration(j);
  auto out = instanceRecordFromJson(j);
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  CHECK(out->snapshotGeneration == 0);
  // ...and a version 6 record must carry it.
  j["version"] = 6;
  auto strict = instanceRecordFromJson(j);
  REQUIRE_FALSE(strict.ok());
  CHECK(strict.error().message.find("snapshotGeneration: missing") != std::string::npos);
}

TEST_CASE("mistyped field, bad enum, bad state and bad version are errors") {
  auto base = toJson(sampleRecord());
  {
    auto j = base;
    j["standby"] = "yes";
    auto out = instanceRecordFromJson(j);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().message.find("standby: expected boolean") != std::string::npos);
  }
  {
    auto j = base;
    j["spec"]["hypervisor"] = "firecracker";
    auto out = instanceRecordFromJson(j);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().message.find("spec.hypervisor: unknown value") != std::string::npos);
  }
  {
    auto j = base;
    j["state"] = 9;
    auto out = instanceRecordFromJson(j);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().message == "instance record: state: out of range");
  }
  {
    auto j = base;
    j["version"] = 9;
    auto out = instanceRecordFromJson(j);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().message.find("version 9 is not supported") != std::string::npos);
  }
  {
    auto out = instanceRecordFromJson(nlohmann::json::array());
    REQUIRE_FALSE(out.ok());
  }
}

}  // namespace
}  // namespace s2z::agent
