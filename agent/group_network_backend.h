// Nomad group networking (bridge or cni/<name>) for the VM tasks, beside the
// host networking of agent/host_network_backend.cpp: a NetworkBackend that
// passes every call to the host backend unless the task joined a group
// network (joinGroup), and then does Kata's tcfilter model in the alloc's
// network namespace:
//
// - address, prefix, gateway and MAC are eth0's, as CNI made it; the guest
//   takes them through ip= and the NIC's MAC (nothing is leased);
// - the tap is created inside the netns (its queue fds, held by us and the
//   VMM, work from the host's netns like any fd) with eth0's MTU;
// - plumb adds ingress qdiscs with u32 + mirred redirects eth0 -> tap and
//   tap -> eth0 (agent/tc_redirect.h); eth0 keeps its address and routes,
//   so Nomad's CNI CHECK after a client restart still passes, and unplumb
//   removes exactly those qdiscs: the netns is left as CNI made it;
// - Tap::ifindex() is the host end of eth0's veth, in the plugin's netns:
//   the instance's key for the BPF maps, where the classifier runs
//   (s2z_port_egress on that bridge port: marks are still visible there,
//   and scrubbed once a frame crosses the veth);
// - the task's host ports (host_ip:value) are registered for the health
//   hooks, so a check with address_mode = "host" is answered while it
//   sleeps.
//
// Scale to zero needs eth0 to be a veth whose peer lives in the plugin's
// network namespace (the bridge plugin's layout). A macvlan or ipvlan (l2)
// eth0 is joined the same way, but joinGroup says the task cannot sleep
// there (GroupJoin): no device of the plugin's netns carries its frames with
// their marks. An eth0 that does no ARP (ipvlan l3/l3s) is refused.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agent/network_backend.h"

namespace s2z::bpf {
class KernelScaleToZero;
}

namespace s2z::agent {

// Wraps `host`; `kernel` (may be null: no scale-to-zero) receives the host
// port registrations and must outlive the backend.
std::unique_ptr<NetworkBackend> makeGroupNetworkBackend(std::unique_ptr<NetworkBackend> host,
                                                        bpf::KernelScaleToZero* kernel);

}  // namespace s2z::agent
