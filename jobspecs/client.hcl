# Nomad client agent configuration for s2z-kata.
# Copy the `s2z-kata` binary into plugin_dir; Nomad 1.10+ loads it only with this block.
client {
  enabled = true
}

plugin_dir = "/opt/nomad/plugins"

plugin "s2z-kata" {
  config {
    hypervisor  = "qemu"               # or "cloud-hypervisor"
    qemu_path   = "qemu-system-x86_64" # looked up in PATH
    accelerator = "auto"               # kvm when it really runs guests, else tcg
    state_dir   = "/var/lib/s2z-kata"  # snapshots and guest RAM files (on disk)
    kernel      = "/var/lib/s2z-kata/images/vmlinuz"
    initrd      = "/var/lib/s2z-kata/images/initrd.img"
    subnet      = "10.89.0.0/24"       # VM addresses; .1 is the host side
    idle_timeout = "5m"

    # Health checks never wake a VM and keep passing while it sleeps:
    # every packet from Consul's cgroup carries this mark bit, and while a VM
    # sleeps its checks are answered by the driver's always-200 responder.
    health_check_mark   = 4096
    health_check_cgroup = "/system.slice/consul.service"
  }
}
