// One VM address, one live instance: s2z_addr sends health checks for an
// address to the instance that owns it, so a second live instance with the
// same address (a task in another network namespace whose CNI subnet
// overlaps) is refused, while an entry left by a dead instance is taken over.
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <doctest/doctest.h>

#include "bpf/kernel_scale_to_zero.h"
#include "tests/bpf/test_env.h"
#include "tests/err_text.h"

namespace s2z::bpf {
namespace {

using namespace test;

uint32_t addrBe(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return a.s_addr;
}

std::unique_ptr<KernelScaleToZero> openKernel(const TestPinRoot& pins) {
  auto opened = KernelScaleToZero::open(pins.path(), 0x4000);
  REQUIRE_MESSAGE(opened.ok(), s2z::tests::errText(opened));
  return std::move(*opened);
}

uint32_t ownerOf(const KernelScaleToZero& kernel, uint32_t addr) {
  uint32_t owner = 0;
  if (bpf_map_lookup_elem(kernel.program().addrMapFd(), &addr, &owner) != 0) return 0;
  return owner;
}

}  // namespace

TEST_CASE("VM address: a live instance's is refused to another interface, with nothing registered for it") {
  TestPinRoot pins("addr-owner");
  TestNetns host("addr-owner");
  TestNetns vm("addr-owner-vm");
  host.enter();
  TestTap tap(host);
  TestVethVm veth(host, vm);
  auto kernel = openKernel(pins);
  const uint32_t addr = addrBe(TestTap::kVmAddr);

  REQUIRE(kernel->addInstance(tap.ifindex(), addr).ok());
  auto second = kernel->addInstance(veth.hostIfindex(), addr);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == ErrorCode::kAlreadyExists);
  CHECK_MESSAGE(second.error().describe().find("VM address 10.89.0.2 is already another task's") != std::string::npos,
                second.error().describe());
  CHECK(ownerOf(*kernel, addr) == tap.ifindex());
  CHECK(kernel->state(veth.hostIfindex()).error().code == ErrorCode::kNotFound);
  CHECK(*kernel->program().attachedProgramId(veth.hostIfindex()) == 0);  // nothing attached

  // Its owner registering again (a plugin restart's recovery) is fine.
  CHECK(kernel->addInstance(tap.ifindex(), addr).ok());
  // Once the owner is gone the address is free.
  REQUIRE(kernel->removeInstance(tap.ifindex(), addr).ok());
  REQUIRE(kernel->addInstance(veth.hostIfindex(), addr).ok());
  CHECK(ownerOf(*kernel, addr) == veth.hostIfindex());
  REQUIRE(kernel->removeInstance(veth.hostIfindex(), addr).ok());
}

TEST_CASE("VM address: an entry left by a dead instance (no registration, or its interface gone) is taken over") {
  TestPinRoot pins("addr-stale");
  TestNetns host("addr-stale");
  host.enter();
  TestTap tap(host);
  auto kernel = openKernel(pins);
  const uint32_t addr = addrBe(TestTap::kVmAddr);

  // A plugin killed before removeInstance: the entry names an interface
  // that is not registered (and here does not exist either).
  uint32_t dead = 0x7ffffff0;
  REQUIRE(bpf_map_update_elem(kernel->program().addrMapFd(), &addr, &dead, BPF_ANY) == 0);
  REQUIRE(kernel->addInstance(tap.ifindex(), addr).ok());
  CHECK(ownerOf(*kernel, addr) == tap.ifindex());
  REQUIRE(kernel->removeInstance(tap.ifindex(), addr).ok());
  CHECK(ownerOf(*kernel, addr) == 0);
}

}  // namespace s2z::bpf
