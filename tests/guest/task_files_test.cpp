// The guest agent's task-directory writes (guest/agent/task_files.*) on the
// host, in a temp dir standing for the workload's root: chunked files
// replaced atomically, directories and symlinks, removal, and no way out of
// /local, /secrets and /alloc.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "guest/agent/task_files.h"

using namespace s2z;
using namespace s2z::guest;
namespace fs = std::filesystem;
namespace pb = s2z::agent::v1;

namespace {

struct Root {
  fs::path path;
  Root() {
    char tmpl[] = "/tmp/s2z-taskfiles-XXXXXX";
    path = ::mkdtemp(tmpl);
    for (const char* d : {"local", "secrets", "alloc", "etc"}) fs::create_directory(path / d);
    std::ofstream(path / "etc/passwd") << "root:x:0:0::/root:/bin/sh\n";
  }
  ~Root() { fs::remove_all(path); }
  std::string read(const std::string& rel) const {
    std::ifstream in(path / rel);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

pb::CopyFile file(const std::string& path, const std::string& data, uint64_t offset, uint64_t size) {
  pb::CopyFile f;
  f.set_path(path);
  f.set_kind(pb::CopyFile::FILE);
  f.set_mode(0640);
  f.set_uid(::getuid());
  f.set_gid(::getgid());
  f.set_offset(offset);
  f.set_file_size(size);
  f.set_data(data);
  return f;
}

}  // namespace

TEST_CASE("a file in chunks appears whole, with its mode, only when its last chunk arrived") {
  Root root;
  std::ofstream(root.path / "local/app.conf") << "old";
  REQUIRE(copyTaskFile(root.path, file("/local/app.conf", "hello ", 0, 11)).ok());
  CHECK(root.read("local/app.conf") == "old");  // the old one until the new is complete
  REQUIRE(copyTaskFile(root.path, file("/local/app.conf", "world", 6, 11)).ok());
  CHECK(root.read("local/app.conf") == "hello world");
  struct stat st {};
  REQUIRE(::stat((root.path / "local/app.conf").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK_FALSE(fs::exists(root.path / "local/app.conf.s2z-partial"));
  // Parents are made on the way.
  REQUIRE(copyTaskFile(root.path, file("/secrets/vault/token", "t", 0, 1)).ok());
  CHECK(root.read("secrets/vault/token") == "t");
}

TEST_CASE("directories, symlinks and removal") {
  Root root;
  pb::CopyFile dir;
  dir.set_path("/alloc/data");
  dir.set_kind(pb::CopyFile::DIRECTORY);
  dir.set_mode(0750);
  dir.set_uid(::getuid());
  dir.set_gid(::getgid());
  REQUIRE(copyTaskFile(root.path, dir).ok());
  CHECK(fs::is_directory(root.path / "alloc/data"));
  pb::CopyFile link = dir;
  link.set_path("/local/current");
  link.set_kind(pb::CopyFile::SYMLINK);
  link.set_link_target("/alloc/data");
  REQUIRE(copyTaskFile(root.path, link).ok());
  CHECK(fs::read_symlink(root.path / "local/current") == "/alloc/data");
  REQUIRE(copyTaskFile(root.path, file("/alloc/data/x", "1", 0, 1)).ok());
  REQUIRE(removeTaskPath(root.path, "/alloc/data").ok());
  CHECK_FALSE(fs::exists(root.path / "alloc/data"));
  CHECK(removeTaskPath(root.path, "/alloc/data").ok());  // already gone: fine
}

TEST_CASE("nothing outside /local, /secrets and /alloc can be written or removed") {
  Root root;
  for (const char* bad : {"/etc/passwd", "/local/../etc/passwd", "local/x", "/", "/localx/y",
                          "/alloc/./x"}) {
    CAPTURE(bad);
    auto written = copyTaskFile(root.path, file(bad, "pwned", 0, 5));
    REQUIRE_FALSE(written.ok());
    CHECK(written.error().code == ErrorCode::kInvalidArgument);
    CHECK_FALSE(removeTaskPath(root.path, bad).ok());
  }
  CHECK_FALSE(removeTaskPath(root.path, "/local").ok());  // a task dir itself stays
  // A symlink inside a task dir is not followed on the way to a file.
  fs::create_directory_symlink(root.path / "etc", root.path / "local/escape");
  CHECK_FALSE(copyTaskFile(root.path, file("/local/escape/passwd", "pwned", 0, 5)).ok());
  CHECK(root.read("etc/passwd") == "root:x:0:0::/root:/bin/sh\n");
}
