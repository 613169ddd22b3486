// libbpf's own messages, routed into spdlog instead of raw stderr lines.
#pragma once

namespace s2z::bpf {

// Installs (once per process) a libbpf print callback that logs to spdlog
// at debug level (trace for libbpf's debug output). libbpf warns about
// conditions this module expects and handles (an existing clsact qdisc, a
// missing pin or filter), so its warnings are not ours: our errors come
// back as Result with context; raise the log level to see libbpf's detail
// (e.g. the verifier log of a failed load).
void routeLibbpfLogs();

}  // namespace s2z::bpf
