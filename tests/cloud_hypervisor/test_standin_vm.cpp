// The stand-in's own contract checks: if these did not reject bad requests,
// the lifecycle tests could pass against a backend that sends them.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "tests/cloud_hypervisor/ch_standin_vm.h"
#include "vmm/cloud_hypervisor/ch_http.h"

using namespace s2z::tests::ch;
using s2z::vmm::ch::HttpMessage;

namespace {
HttpMessage put(const std::string& endpoint, const std::string& body = "") {
  HttpMessage m;
  m.method = "PUT";
  m.target = "/api/v1/" + endpoint;
  m.body = body;
  if (!body.empty()) m.headers["content-type"] = "application/json";
  return m;
}
HttpMessage get(const std::string& endpoint) {
  HttpMessage m = put(endpoint);
  m.method = "GET";
  return m;
}
const std::string kCreate =
    R"({"payload":{"kernel":"/k","cmdline":"c"},"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":268435456}})";
const std::string kNet = R"({"id":"net0","num_queues":2})";
}  // namespace

TEST_CASE("state machine: 404 without a VM, 405 in the wrong state") {
  StandinVm vm({45, 0, 0});
  CHECK(vm.handle(put("vm.boot"), 0).status == 404);
  CHECK(vm.handle(get("vm.info"), 0).status == 404);
  CHECK(vm.handle(put("vm.create", kCreate), 0).status == 204);
  CHECK(vm.state() == VmState::kCreated);
  CHECK(vm.handle(put("vm.create", kCreate), 0).status == 400);
  CHECK(vm.handle(put("vm.pause"), 0).status == 405);
  CHECK(vm.handle(put("vm.add-net", kNet), 1).status == 204);
  CHECK(vm.handle(put("vm.boot"), 0).status == 204);
  CHECK(vm.handle(put("vm.snapshot", R"({"destination_url":"file:///tmp"})"), 0).status == 405);
  CHECK(vm.handle(put("vm.resume"), 0).status == 405);
  CHECK(vm.handle(put("vm.pause"), 0).status == 204);
  CHECK(vm.state() == VmState::kPaused);
  auto info = vm.handle(get("vm.info"), 0);
  CHECK(info.status == 200);
  CHECK(info.body.find("\"state\":\"Paused\"") != std::string::npos);
  CHECK(vm.handle(put("vm.power-button"), 0).status == 405);  // paused: not booted
  CHECK(vm.handle(put("vm.shutdown"), 0).status == 204);
  CHECK(vm.handle(put("vmm.shutdown"), 0).exitAfter);
}

TEST_CASE("bodies: unknown fields, wrong types, missing required fields are 400") {
  StandinVm vm({45, 0, 0});
  CHECK(vm.handle(put("vm.create", R"({"cpus":{"boot_vcpus":1,"max_vcpus":1}})"), 0).status == 400);
  CHECK(vm.handle(put("vm.create", R"({"payload":{"kernel":"/k"},"bogus":1})"), 0).status == 400);
  CHECK(vm.handle(put("vm.create", R"({"payload":{"kernel":"/k"},"memory":{"size":"1G"}})"), 0)
            .status == 400);
  CHECK(vm.handle(put("vm.create", "not json"), 0).status == 400);
  CHECK(vm.handle(put("vm.boot", "{}"), 0).status == 400);  // takes no body
  CHECK(vm.handle(get("vm.boot"), 0).status == 405);
  CHECK(vm.handle(put("vm.nonsense"), 0).status == 404);
}

TEST_CASE("fd counts must match what the body announces") {
  StandinVm vm({45, 0, 0});
  REQUIRE(vm.handle(put("vm.create", kCreate), 0).status == 204);
  CHECK(vm.handle(put("vm.add-net", kNet), 0).status == 400);
  CHECK(vm.handle(put("vm.add-net", kNet), 2).status == 400);
  CHECK(vm.handle(put("vm.add-net", R"({"id":"net0","num_queues":2,"fds":[4]})"), 1).status ==
        400);  // fds in JSON are not part of the API
  CHECK(vm.handle(put("vm.boot"), 1).status == 400);
  CHECK(vm.handle(put("vm.add-net", kNet), 1).status == 204);

  StandinVm fresh({45, 0, 0});
  const std::string restore =
      R"({"source_url":"file:///nonexistent","net_fds":[{"id":"net0","num_fds":1}]})";
  auto mismatch = fresh.handle(put("vm.restore", restore), 0);
  CHECK(mismatch.status == 400);
  CHECK(mismatch.body.find("0 fds received, 1 announced") != std::string::npos);
  CHECK(StandinVm::expectedFds("vm.restore", nlohmann::json::parse(restore)) == 1);
}

TEST_CASE("net_fds is unknown before v40; OnDemand before v52") {
  StandinVm v39({39, 0, 0});
  CHECK(v39.handle(put("vm.restore",
                       R"({"source_url":"file:///x","net_fds":[{"id":"net0","num_fds":1}]})"),
                   1)
            .status == 400);
  StandinVm v45({45, 0, 0});
  CHECK(v45.handle(put("vm.restore", R"({"source_url":"file:///x","memory_restore_mode":"OnDemand"})"),
                   0)
            .status == 400);
}

TEST_CASE("injected failures answer with the VMM's message") {
  StandinVm vm({45, 0, 0});
  vm.inject("vm.create", {500, "Error creating VM: cannot open kernel"});
  auto r = vm.handle(put("vm.create", kCreate), 0);
  CHECK(r.status == 500);
  CHECK(r.body == "Error creating VM: cannot open kernel");
  CHECK(vm.state() == VmState::kNone);
}

TEST_CASE("RAM in a shared zone file: mapped at boot, not dumped by vm.snapshot, "
          "mapped again by a copy restore; OnDemand finds no memory-ranges") {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/s2z-ch-ram-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const fs::path dir = tmpl;
  const fs::path ram = dir / "guest-ram";
  const std::string create =
      R"({"payload":{"kernel":"/k"},"memory":{"size":0,"shared":true,"zones":[{"id":"ram0","size":8388608,"file":")" +
      ram.string() + R"(","shared":true}]}})";
  StandinVm noZones({45, 0, 0});
  CHECK(noZones.handle(put("vm.create", R"({"payload":{"kernel":"/k"},"memory":{"size":0}})"), 0)
            .status == 400);

  StandinVm vm({52, 0, 0});
  REQUIRE(vm.handle(put("vm.create", create), 0).status == 204);
  auto missing = vm.handle(put("vm.boot"), 0);  // the VMM opens the file, never creates it
  CHECK(missing.status == 500);
  CHECK(vm.state() == VmState::kCreated);
  std::ofstream(ram).close();
  fs::resize_file(ram, 4 << 20);
  CHECK(vm.handle(put("vm.boot"), 0).status == 500);  // shorter than the zone
  fs::resize_file(ram, 8 << 20);
  REQUIRE(vm.handle(put("vm.boot"), 0).status == 204);
  std::string marker(sizeof(StandinRam::kBootMarker) - 1, '\0');
  std::ifstream(ram).read(marker.data(), static_cast<std::streamsize>(marker.size()));
  CHECK(marker == StandinRam::kBootMarker);  // the "guest" wrote its memory through the file

  REQUIRE(vm.handle(put("vm.pause"), 0).status == 204);
  fs::create_directory(dir / "snap");
  const std::string url = "file://" + (dir / "snap").string();
  REQUIRE(vm.handle(put("vm.snapshot", R"({"destination_url":")" + url + R"("})"), 0).status == 204);
  CHECK(fs::exists(dir / "snap" / "config.json"));
  CHECK_FALSE(fs::exists(dir / "snap" / "memory-ranges"));

  StandinVm onDemand({52, 0, 0});
  auto refused = onDemand.handle(
      put("vm.restore", R"({"source_url":")" + url + R"(","memory_restore_mode":"OnDemand"})"), 0);
  CHECK(refused.status == 500);
  CHECK(refused.body.find("memory-ranges") != std::string::npos);
  StandinVm copy({52, 0, 0});
  CHECK(copy.handle(put("vm.restore", R"({"source_url":")" + url + R"("})"), 0).status == 204);
  CHECK(copy.state() == VmState::kPaused);
  fs::remove(ram);
  StandinVm noRam({52, 0, 0});
  CHECK(noRam.handle(put("vm.restore", R"({"source_url":")" + url + R"("})"), 0).status == 500);
  fs::remove_all(dir);
}
