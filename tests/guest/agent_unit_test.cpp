// The guest agent's pure parts on the host, no VM, no root: the ip= parameter,
// /etc/passwd and /etc/group parsing, command resolution inside a root.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "guest/agent/launch_plan.h"
#include "guest/agent/network_config.h"
#include "guest/agent/user_lookup.h"
#include "tests/err_text.h"

namespace s2z::guest {
namespace {

namespace fs = std::filesystem;

// A tiny root filesystem in a temp dir: /etc/passwd, /etc/group, /usr/bin/tool,
// /bin -> usr/bin (relative), /usr/local/bin/abs -> /usr/bin/tool (absolute).
class FakeRoot {
 public:
  FakeRoot() {
    std::string templ = (fs::temp_directory_path() / "s2z-root.XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()));
    dir_ = templ;
    fs::create_directories(dir_ / "etc");
    fs::create_directories(dir_ / "usr/bin");
    fs::create_directories(dir_ / "usr/local/bin");
    fs::create_directories(dir_ / "home/app");
    write("etc/passwd",
          "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken-line\napp:x:1000:1000::/home/app:/bin/sh\n"
          "svc:x:999:998::/srv:/usr/sbin/nologin\n");
    write("etc/group", "root:x:0:\napp:x:1000:\nwheel:x:10:app,svc\naudio:x:29:svc\nvideo:x:44:app\n");
    write("usr/bin/tool", "#!/bin/sh\n");
    ::chmod((dir_ / "usr/bin/tool").c_str(), 0755);
    write("usr/bin/data", "not executable\n");
    fs::create_directory_symlink("usr/bin", dir_ / "bin");
    fs::create_symlink("/usr/bin/tool", dir_ / "usr/local/bin/abs");
  }
  ~FakeRoot() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

 private:
  void write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }
  fs::path dir_;
};

agent::v1::StartWorkload spec(std::vector<std::string> argv, std::string user = "", std::string cwd = "",
                              std::vector<std::string> env = {}) {
  agent::v1::StartWorkload s;
  for (auto& a : argv) s.add_argv(a);
  for (auto& e : env) s.add_env(e);
  s.set_user(user);
  s.set_working_dir(cwd);
  return s;
}

}  // namespace

TEST_CASE("parseIpParameter: the driver's form, the last ip= wins, dhcp and garbage ignored") {
  auto c = parseIpParameter("console=ttyS0 ip=10.89.0.2::10.89.0.1:255.255.255.0::eth0:off quiet");
  REQUIRE(c.has_value());
  CHECK(c->address == "10.89.0.2");
  CHECK(c->gateway == "10.89.0.1");
  CHECK(c->netmask == "255.255.255.0");
  CHECK(c->device == "eth0");
  c = parseIpParameter("ip=1.2.3.4::5.6.7.8:255.255.255.255::eth1:off ip=10.0.0.2::10.0.0.1:255.0.0.0::eth0:off\n");
  REQUIRE(c.has_value());
  CHECK(c->address == "10.0.0.2");
  CHECK_FALSE(parseIpParameter("console=ttyS0").has_value());
  CHECK_FALSE(parseIpParameter("ip=dhcp").has_value());
  CHECK_FALSE(parseIpParameter("vip=10.0.0.2::10.0.0.1:255.0.0.0::eth0:off").has_value());
}

TEST_CASE("parseIpParameter: s2z.mtu= sets the link's MTU; absent, bad or out of range leaves the device's") {
  const std::string ip = "ip=172.26.64.5::172.26.64.1:255.255.240.0::eth0:off";
  CHECK(parseIpParameter(ip)->mtu == 0);
  CHECK(parseIpParameter("s2z.mtu=1400 " + ip)->mtu == 1400);
  CHECK(parseIpParameter(ip + " s2z.mtu=9000\n")->mtu == 9000);
  CHECK(parseIpParameter(ip + " s2z.mtu=68")->mtu == 68);
  for (const char* bad : {"s2z.mtu=", "s2z.mtu=67", "s2z.mtu=65536", "s2z.mtu=1400x", "s2z.mtu=-1", "xs2z.mtu=1400"}) {
    CAPTURE(bad);
    CHECK(parseIpParameter(ip + " " + bad)->mtu == 0);
  }
  CHECK_FALSE(parseIpParameter("s2z.mtu=1400").has_value());  // no ip=: nothing to configure
}

TEST_CASE("parseIpParameter: each s2z.route= adds a route, in order; malformed ones are ignored") {
  const std::string ip = "ip=172.26.64.5::172.26.64.1:255.255.240.0::eth0:off";
  CHECK(parseIpParameter(ip)->routes.empty());
  auto c = parseIpParameter(ip + " s2z.route=10.1.0.0/16 s2z.mtu=1400 s2z.route=192.0.2.0/24,172.26.64.9 "
                                 "s2z.route=198.51.100.7/32,172.26.64.1\n");
  REQUIRE(c.has_value());
  CHECK(c->mtu == 1400);
  CHECK(c->routes == std::vector<IpRoute>{{"10.1.0.0", "255.255.0.0", ""},
                                          {"192.0.2.0", "255.255.255.0", "172.26.64.9"},
                                          {"198.51.100.7", "255.255.255.255", "172.26.64.1"}});
  CHECK(parseIpParameter(ip + " s2z.route=0.0.0.0/1")->routes == std::vector<IpRoute>{{"0.0.0.0", "128.0.0.0", ""}});
  for (const char* bad : {"s2z.route=", "s2z.route=10.1.0.0", "s2z.route=10.1.0.0/", "s2z.route=10.1.0.0/0",
                          "s2z.route=10.1.0.0/33", "s2z.route=10.1.0.0/16x", "s2z.route=10.1.0.1/16",
                          "s2z.route=10.1.0.0/16,", "s2z.route=10.1.0.0/16,gw", "s2z.route=fd00::/8",
                          "xs2z.route=10.1.0.0/16"}) {
    CAPTURE(bad);
    CHECK(parseIpParameter(ip + " " + bad)->routes.empty());
  }
}

TEST_CASE("lookupUser: names, numbers, groups, unknown users") {
  FakeRoot root;
  auto app = lookupUser(root.path(), "app");
  REQUIRE(app.ok());
  CHECK(app->uid == 1000);
  CHECK(app->gid == 1000);
  CHECK(app->home == "/home/app");
  CHECK(app->groups == std::vector<gid_t>{1000, 10, 44});

  auto rootUser = lookupUser(root.path(), "");
  REQUIRE(rootUser.ok());
  CHECK(rootUser->uid == 0);
  CHECK(rootUser->name == "root");
  CHECK(rootUser->home == "/root");

  auto numeric = lookupUser(root.path(), "1000:44");
  REQUIRE(numeric.ok());
  CHECK(numeric->uid == 1000);
  CHECK(numeric->gid == 44);
  CHECK(numeric->home == "/home/app");

  auto stranger = lookupUser(root.path(), "4242");
  REQUIRE(stranger.ok());
  CHECK(stranger->uid == 4242);
  CHECK(stranger->gid == 0);
  CHECK(stranger->home == "/");
  CHECK(stranger->groups == std::vector<gid_t>{0});

  auto unknown = lookupUser(root.path(), "nobody-here");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().describe() == "unknown user \"nobody-here\": not in the root filesystem's /etc/passwd");
  CHECK_FALSE(lookupUser(root.path(), "1000:abc").ok());
  CHECK_FALSE(lookupUser(root.path(), "a:b:c").ok());
}

TEST_CASE("makeLaunchPlan: PATH search inside the root, symlinks kept inside, env defaults") {
  FakeRoot root;
  auto plan = makeLaunchPlan(root.path(), spec({"tool", "arg"}, "app"));
  REQUIRE_MESSAGE(plan.ok(), s2z::tests::errText(plan));
  CHECK(plan->executable == "/usr/bin/tool");
  CHECK(plan->workingDir == "/");
  CHECK(plan->env == std::vector<std::string>{std::string("PATH=") + kDefaultPath, "HOME=/home/app", "USER=app"});

  // An absolute symlink resolves inside the root, not on the host.
  plan = makeLaunchPlan(root.path(), spec({"abs"}, "", "/home/app", {"PATH=/usr/local/bin", "HOME=/x"}));
  REQUIRE_MESSAGE(plan.ok(), s2z::tests::errText(plan));
  CHECK(plan->executable == "/usr/local/bin/abs");
  CHECK(plan->workingDir == "/home/app");
  CHECK(plan->env == std::vector<std::string>{"PATH=/usr/local/bin", "HOME=/x", "USER=root"});

  CHECK(makeLaunchPlan(root.path(), spec({"/bin/tool"})).ok());  // through /bin -> usr/bin
  auto missing = makeLaunchPlan(root.path(), spec({"data"}, "", "", {"PATH=/usr/bin"}));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().describe() == "command \"data\" not found in the task's root filesystem (PATH=/usr/bin)");
  auto dir = makeLaunchPlan(root.path(), spec({"tool"}, "", "/nope"));
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.error().describe().find("\"/nope\"") != std::string::npos);
  CHECK_FALSE(makeLaunchPlan(root.path(), spec({})).ok());
  CHECK_FALSE(makeLaunchPlan(root.path(), spec({"tool"}, "ghost")).ok());
}

}  // namespace s2z::guest
