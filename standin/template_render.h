// Nomad's template block, as far as a driver can tell: the client renders
// each template into the task directory before StartTask (prestart hook),
// and on a change writes the file again and applies change_mode. Writes are
// atomic (temp file + rename, as consul-template's renderer does), with the
// template's perms (default 0644). Rendering itself (Consul, Vault lookups)
// is not modelled: a template's data is its output.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::standin {

struct TemplateSpec {
  std::string destination;        // relative to the task dir, e.g. "local/app.conf"
  std::string data;               // the rendered text
  std::string changeMode = "restart";  // restart | signal | noop
  std::string changeSignal;       // for change_mode = signal
  unsigned perms = 0644;
};

// Writes data to <taskDir>/<destination>, creating parent directories.
// kInvalidArgument for a destination that leaves the task dir.
Result<void> renderTemplate(const std::string& taskDir, const std::string& destination,
                            const std::string& data, unsigned perms);

}  // namespace s2z::standin
