// AddressPool on real files in a private temp directory (no root needed).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "agent/address_pool.h"
#include "tests/agent/net_netns.h"
#include "tests/scratch_dir.h"

using namespace s2z;
using namespace s2z::agent;
namespace fs = std::filesystem;

namespace {

}  // namespace

TEST_CASE("address pool: bad subnets are rejected naming the subnet") {
  tests::ScratchDir dir;
  for (const char* bad : {"10.89.0.0", "10.89.0/24", "10.89.0.0/33", "10.89.0.0/31",
                          "10.89.0.5/24", "banana/24", "10.89.0.0/24x", "10.89.0.0/"}) {
    auto pool = AddressPool::open(dir.path, bad);
    REQUIRE_FALSE(pool.ok());
    CHECK(pool.error().code == ErrorCode::kInvalidArgument);
    CHECK(pool.error().message.find(bad) != std::string::npos);
  }
}

TEST_CASE("address pool: allocate skips network and gateway, fills the lease") {
  tests::ScratchDir dir;
  auto pool = AddressPool::open(dir.path / "leases", "10.89.3.0/24");
  REQUIRE_MESSAGE(pool.ok(), testing::why(pool));
  auto a = pool->allocate("task-a");
  REQUIRE(a.ok());
  CHECK(a->address == "10.89.3.2");
  CHECK(a->gateway == "10.89.3.1");
  CHECK(a->prefixLength == 24);
  CHECK(a->netmask == "255.255.255.0");
  auto b = pool->allocate("task-b");
  REQUIRE(b.ok());
  CHECK(b->address == "10.89.3.3");
  std::ifstream f(dir.path / "leases" / "10.89.3.2");
  std::string owner;
  std::getline(f, owner);
  CHECK(owner == "task-a");
}

TEST_CASE("address pool: exhaustion, release makes room, release is idempotent") {
  tests::ScratchDir dir;
  // /29: .0 network, .1 gateway, .7 broadcast -> .2 .. .6 for VMs.
  auto pool = AddressPool::open(dir.path, "10.89.0.8/29");
  REQUIRE(pool.ok());
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto l = pool->allocate("t" + std::to_string(i));
    REQUIRE_MESSAGE(l.ok(), testing::why(l));
    got.push_back(l->address);
  }
  CHECK(got == std::vector<std::string>{"10.89.0.10", "10.89.0.11", "10.89.0.12", "10.89.0.13",
                                        "10.89.0.14"});
  auto full = pool->allocate("late");
  REQUIRE_FALSE(full.ok());
  CHECK(full.error().code == ErrorCode::kUnavailable);

  REQUIRE(pool->release("10.89.0.12").ok());
  CHECK(pool->release("10.89.0.12").ok());
  auto again = pool->allocate("late");
  REQUIRE(again.ok());
  CHECK(again->address == "10.89.0.12");
}

TEST_CASE("address pool: reclaim confirms the owner, survives a new pool object") {
  tests::ScratchDir dir;
  std::string addr;
  {
    auto pool = AddressPool::open(dir.path, "10.89.4.0/24");
    REQUIRE(pool.ok());
    addr = pool->allocate("task-x").value().address;
  }
  // A "restarted plugin": a new pool over the same directory.
  auto pool = AddressPool::open(dir.path, "10.89.4.0/24");
  REQUIRE(pool.ok());
  auto mine = pool->reclaim(addr, "task-x");
  REQUIRE_MESSAGE(mine.ok(), testing::why(mine));
  CHECK(mine->address == addr);
  CHECK(mine->gateway == "10.89.4.1");

  auto theirs = pool->reclaim(addr, "task-y");
  REQUIRE_FALSE(theirs.ok());
  CHECK(theirs.error().code == ErrorCode::kAlreadyExists);

  // Lease file lost: reclaim re-creates it, and allocate then skips it.
  REQUIRE(pool->release(addr).ok());
  REQUIRE(pool->reclaim(addr, "task-x").ok());
  CHECK(pool->allocate("task-z").value().address != addr);

  CHECK(pool->reclaim("10.89.4.1", "task-x").error().code == ErrorCode::kInvalidArgument);
  CHECK(pool->reclaim("10.89.5.7", "task-x").error().code == ErrorCode::kInvalidArgument);
  CHECK(pool->reclaim("10.89.4.255", "task-x").error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("address pool: concurrent allocations from two pools never collide") {
  tests::ScratchDir dir;
  // Two pool objects over one directory, as two plugin processes would have.
  auto p1 = AddressPool::open(dir.path, "10.89.8.0/24");
  auto p2 = AddressPool::open(dir.path, "10.89.8.0/24");
  REQUIRE(p1.ok());
  REQUIRE(p2.ok());
  std::vector<std::string> a1, a2;
  auto run = [](AddressPool& pool, std::vector<std::string>& out, const std::string& who) {
    for (int i = 0; i < 150; ++i) {
      auto l = pool.allocate(who + std::to_string(i));
      if (!l.ok()) break;
      out.push_back(l->address);
    }
  };
  std::thread t1([&] { run(*p1, a1, "one-"); });
  std::thread t2([&] { run(*p2, a2, "two-"); });
  t1.join();
  t2.join();
  std::set<std::string> all(a1.begin(), a1.end());
  all.insert(a2.begin(), a2.end());
  CHECK(all.size() == a1.size() + a2.size());  // no address handed out twice
  CHECK(all.size() == 253);                      // .2 .. .254: the whole subnet
  // Every lease file names the thread that got it.
  for (const auto& addr : a1) {
    std::ifstream f(dir.path / addr);
    std::string owner;
    std::getline(f, owner);
    CHECK(owner.rfind("one-", 0) == 0);
  }
  // No temp files left behind.
  for (const auto& e : fs::directory_iterator(dir.path))
    CHECK(e.path().filename().string().rfind(".lease-", 0) != 0);
}
