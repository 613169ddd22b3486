// Small whole-file helpers for /proc, /sys and the root's /etc files.
#pragma once

#include <string>

#include "common/result.h"

namespace s2z::guest {

// The whole file (files here are small: sysfs attributes, /etc/passwd).
Result<std::string> readFile(const std::string& path);
// Opens with O_WRONLY|O_TRUNC (|O_CREAT with mode 0644) and writes all of data.
// sysfs/cgroupfs files report a rejected value as a failed write.
Result<void> writeFile(const std::string& path, const std::string& data);
// Writes a new file next to path and renames it over path, so a symlink at
// path (e.g. resolv.conf -> systemd's) is replaced rather than followed.
Result<void> replaceFile(const std::string& path, const std::string& data);
// Strips trailing whitespace and newlines (sysfs values end in "\n").
std::string trimRight(std::string s);

}  // namespace s2z::guest
