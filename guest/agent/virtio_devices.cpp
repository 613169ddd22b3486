#include "guest/agent/virtio_devices.h"

#include <dirent.h>

#include <memory>

#include "guest/agent/file_io.h"

namespace s2z::guest {

namespace {

// The first entry of `dir` starting with `prefix` whose `dir/<entry>/<attribute>`
// holds `value`; returns "/dev/<entry>".
std::optional<std::string> findByAttribute(const std::string& dir, const std::string& prefix,
                                           const std::string& attribute, const std::string& value) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return std::nullopt;
  while (dirent* e = ::readdir(d.get())) {
    std::string entry = e->d_name;
    if (entry.compare(0, prefix.size(), prefix) != 0) continue;
    auto content = readFile(dir + "/" + entry + "/" + attribute);
    if (content.ok() && trimRight(*content) == value) return "/dev/" + entry;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> findVirtioPort(const std::string& name) {
  return findByAttribute("/sys/class/virtio-ports", "vport", "name", name);
}

std::optional<std::string> findDiskBySerial(const std::string& serial) {
  return findByAttribute("/sys/block", "vd", "serial", serial);
}

}  // namespace s2z::guest
