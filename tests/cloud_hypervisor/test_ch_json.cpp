// The backend's request bodies, checked against the documented schemas the
// stand-in enforces (so a body the real VMM would reject fails here first).
#include <doctest/doctest.h>

#include "tests/cloud_hypervisor/test_util.h"

#include "tests/cloud_hypervisor/ch_api_schema.h"
#include "vmm/cloud_hypervisor/ch_json.h"

using namespace s2z;
using namespace s2z::vmm::ch;
using s2z::tests::ch::validateBody;

namespace {
s2z::vmm::VmConfig sampleConfig() {
  s2z::vmm::VmConfig c;
  c.name = "web-1";
  c.runDir = "/run/s2z/web-1";
  c.kernel = "/guest/vmlinuz";
  c.initrd = "/guest/initrd.img";
  c.cmdline = "console=ttyS0 quiet";
  c.vcpus = 2;
  c.memoryMib = 256;
  c.mac = "52:54:00:12:34:56";
  c.consoleFd = 17;
  return c;
}
constexpr ChVersion kV45{45, 0, 0};
constexpr ChVersion kV52{52, 0, 0};
}  // namespace

TEST_CASE("VmConfig for vm.create follows the schema") {
  auto vm = buildVmConfig(sampleConfig());
  auto valid = validateBody("VmConfig", vm, kV45);
  CHECK_MESSAGE(valid.ok(), s2z::tests::ch::errText(valid));
  CHECK(vm["payload"]["kernel"] == "/guest/vmlinuz");
  CHECK(vm["payload"]["initramfs"] == "/guest/initrd.img");
  CHECK(vm["payload"]["cmdline"] == "console=ttyS0 quiet");
  CHECK(vm["cpus"]["boot_vcpus"] == 2);
  CHECK(vm["cpus"]["max_vcpus"] == 2);
  // The RAM is one zone: the run dir's guest-ram file, mapped shared.
  CHECK(vm["memory"] == nlohmann::json::parse(R"({"size":0,"shared":true,"zones":[
          {"id":"ram0","size":268435456,"file":"/run/s2z/web-1/guest-ram","shared":true}]})"));
  CHECK(vm["serial"]["mode"] == "File");
  // Our fd, inherited as fd 3: Cloud Hypervisor never opens the FIFO by name.
  CHECK(vm["serial"]["file"] == "/dev/fd/3");
  CHECK_FALSE(vm.contains("net"));  // the NIC comes with its fd via vm.add-net
  CHECK_FALSE(vm.contains("disks"));

  auto c = sampleConfig();
  c.initrd.clear();
  c.consoleFd = -1;
  c.rootfs = "/images/rootfs.img";
  auto disk = buildVmConfig(c);
  CHECK(validateBody("VmConfig", disk, kV45).ok());
  CHECK_FALSE(disk["payload"].contains("initramfs"));
  CHECK(disk["serial"]["mode"] == "Null");
  CHECK(disk["disks"][0]["path"] == "/images/rootfs.img");
}

TEST_CASE("an agent guest: its disks by serial (root read-only), a vsock device on the agent socket, "
          "and the cmdline says the channel is vsock") {
  auto c = sampleConfig();
  c.rootfs = "/images/app.img";
  c.agent = s2z::vmm::VmConfig::AgentDevices{"/run/s2z/web-1/agent.sock", 20, 21, "/run/s2z/web-1/scratch.img",
                                             {{"/dev/vg0/data", "vol-data", false}, {"/img/ro.img", "vol-ro", true}}};
  auto vm = buildVmConfig(c);
  auto valid = validateBody("VmConfig", vm, kV45);
  CHECK_MESSAGE(valid.ok(), s2z::tests::ch::errText(valid));
  CHECK(vm["payload"]["cmdline"] == "console=ttyS0 quiet s2z.channel=vsock");
  CHECK(vm["vsock"] == nlohmann::json::parse(R"({"cid":3,"socket":"/run/s2z/web-1/agent.sock"})"));
  // A path too long to bind is given by its name in the VMM's run dir (its cwd).
  auto deep = c;
  deep.agent->socket = "/" + std::string(120, 'd') + "/agent.sock";
  CHECK(buildVmConfig(deep)["vsock"]["socket"] == "agent.sock");
  CHECK(vm["disks"] == nlohmann::json::parse(R"([
      {"path":"/images/app.img","id":"disk0","readonly":true,"serial":"s2z-root"},
      {"path":"/run/s2z/web-1/scratch.img","id":"scratch","serial":"s2z-scratch"},
      {"path":"/dev/vg0/data","id":"vol0","readonly":false,"serial":"vol-data"},
      {"path":"/img/ro.img","id":"vol1","readonly":true,"serial":"vol-ro"}])"));
  // The kernel console stays on the serial port (a file); the workload's
  // output goes over the channel, so there is no console device for it.
  CHECK(vm["serial"]["file"] == "/dev/fd/3");
  CHECK(vm["console"]["mode"] == "Off");
}

TEST_CASE("NetConfig carries no fds in JSON, one queue pair per fd") {
  auto net = buildNetConfig("52:54:00:12:34:56");
  CHECK(validateBody("NetConfig", net, kV45).ok());
  CHECK(net["id"] == kNetId);
  CHECK(net["mac"] == "52:54:00:12:34:56");
  CHECK(net["num_queues"] == 2);
  CHECK_FALSE(net.contains("fds"));
  CHECK_FALSE(net.contains("mtu"));  // 0: the guest is not told, 1500
  auto smaller = buildNetConfig("52:54:00:12:34:56", 1400);
  CHECK(validateBody("NetConfig", smaller, kV45).ok());
  CHECK(smaller["mtu"] == 1400);

  auto withFds = net;
  withFds["fds"] = {4};
  CHECK_FALSE(validateBody("NetConfig", withFds, kV45).ok());
}

TEST_CASE("RestoreConfig: net_fds, copy mode (field omitted: the RAM file is mapped, nothing copied), no resume") {
  auto r = buildRestoreConfig("/state/web-1/snapshot", 1);
  for (auto version : {kV45, kV52}) {
    auto valid = validateBody("RestoreConfig", r, version);
    CHECK_MESSAGE(valid.ok(), s2z::tests::ch::errText(valid));
  }
  CHECK(r["source_url"] == "file:///state/web-1/snapshot");
  CHECK(r["prefault"] == false);
  CHECK(r["net_fds"] == nlohmann::json::parse(R"([{"id":"net0","num_fds":1}])"));
  CHECK_FALSE(r.contains("memory_restore_mode"));
  CHECK_FALSE(r.contains("resume"));
  CHECK(announcedNetFds(r) == 1);

  // What v52 would accept and a v45 VMM would not know, in serde's spelling only.
  auto onDemand = r;
  onDemand["memory_restore_mode"] = "OnDemand";
  CHECK(validateBody("RestoreConfig", onDemand, kV52).ok());
  CHECK_FALSE(validateBody("RestoreConfig", onDemand, kV45).ok());
  onDemand["memory_restore_mode"] = "ondemand";  // the CLI spelling: not a serde variant
  CHECK_FALSE(validateBody("RestoreConfig", onDemand, kV52).ok());
}

TEST_CASE("VmSnapshotConfig and fileUrl") {
  auto s = buildSnapshotConfig("/state/a/../web-1/snapshot.tmp");
  CHECK(validateBody("VmSnapshotConfig", s, kV45).ok());
  CHECK(s["destination_url"] == "file:///state/web-1/snapshot.tmp");
}
