// Connecting to a guest's vsock port through a hybrid-vsock multiplexer: the
// unix socket Cloud Hypervisor (and Firecracker) listen on for the guest's
// virtio-vsock device (VmConfig `vsock.socket`). It needs no vhost-vsock on
// the host. The protocol (Cloud Hypervisor's docs/vsock.md and
// virtio-devices/src/vsock/unix/muxer.rs, fetched at ae44c2971):
// - the host connects and sends "CONNECT <port>\n" (the keyword in any case);
//   the VMM reads it a byte at a time, so data may follow it at once;
// - the VMM asks the guest for a connection to <port>; when the guest accepts,
//   it writes "OK <host port>\n" and from then on the stream is the guest's;
// - when nothing in the guest listens on <port> (the guest answers RST), or
//   the line does not parse, the VMM closes the stream: the host reads EOF.
// Guest-initiated connections go the other way, to unix sockets named
// "<socket>_<port>" that the host listens on; nothing here uses them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::vmm {

// A stream connected to guest port `port`, the VMM's "OK" line consumed.
// kUnavailable when the socket is not there yet or the guest does not listen
// on the port (yet: it may still be booting); kTimeout when no answer came
// within `replyTimeout`; kVmmError for an answer that is not "OK <n>\n".
Result<UniqueFd> connectHybridVsock(const std::filesystem::path& socket, uint32_t port,
                                    std::chrono::milliseconds replyTimeout);

}  // namespace s2z::vmm
