#include "agent/instance_record_json.h"

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
  CHECK(a.logHolder.pid == b.logHolder.pid);
  CHECK(a.logHolder.startTime == b.logHolder.startTime);
  CHECK(a.snapshotDir == b.snapshotDir);
  CHECK(a.startedAtUnixNs == b.startedAtUnixNs);
}

TEST_CASE("instance record survives a JSON round trip through text") {
  InstanceRecord in = sampleRecord();
  auto text = toJson(in).dump();
  auto out = instanceRecordFromJson(nlohmann::json::parse(text));
  REQUIRE_MESSAGE(out.ok(), out.error().describe());
  checkEqual(in, *out);
}

TEST_CASE("a version 1 record from a wave-1 plugin still decodes: its console is the stdout FIFO") {
  auto j = toJson(sampleRecord());
  j["version"] = 1;
  j["spec"].erase("stdoutPath");
  j["spec"].erase("stderrPath");
  j["spec"]["consolePath"] = "/alloc/logs/.web.stdout.fifo";
  j.erase("logHolder");
  auto out = instanceRecordFromJson(j);
  REQUIRE_MESSAGE(out.ok(), out.error().describe());
  CHECK(out->spec.stdoutPath == "/alloc/logs/.web.stdout.fifo");
  CHECK(out->spec.stderrPath.empty());
  CHECK(out->logHolder.pid == 0);
  // ...and a version 2 record must name its paths and holder.
  j["version"] = 2;
  auto strict = instanceRecordFromJson(j);
  REQUIRE_FALSE(strict.ok());
  CHECK(strict.error().message.find("spec.stdoutPath: missing") != std::string::npos);
}

TEST_CASE("default record round trips too") {
  auto out = instanceRecordFromJson(toJson(InstanceRecord{}));
  REQUIRE_MESSAGE(out.ok(), out.error().describe());
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
    j["version"] = 3;
    auto out = instanceRecordFromJson(j);
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().message.find("version 3 is not supported") != std::string::npos);
  }
  {
    auto out = instanceRecordFromJson(nlohmann::json::array());
    REQUIRE_FALSE(out.ok());
  }
}

}  // namespace
}  // namespace s2z::agent
