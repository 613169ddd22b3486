// What the image tests share: running the real tools (a shell command's exit
// status, or its stdout: debugfs, skopeo inspect) and a throw-away cache
// directory that lists the images in it.
#pragma once

#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace s2z::image::test {

inline int sh(const std::string& command) { return std::system(command.c_str()); }

inline std::string capture(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// A cache root under /tmp, removed with everything in it.
struct StoreDir {
  std::filesystem::path root;
  StoreDir() {
    char tmpl[] = "/tmp/s2zt-store-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
  }
  ~StoreDir() { std::filesystem::remove_all(root); }
  // The images of the cache, whole (sha256-*) or not (.tmp-*, .trash-*):
  // everything but its bookkeeping (.locks, tags).
  std::vector<std::string> images() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(root)) {
      const std::string name = e.path().filename().string();
      if (name != ".locks" && name != "tags") out.push_back(name);
    }
    return out;
  }
};

}  // namespace s2z::image::test
