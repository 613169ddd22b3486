# A service whose VM sleeps after 2 idle minutes and wakes on the first request.
job "web" {
  datacenters = ["dc1"]
  type        = "service"

  group "web" {
    network {
      port "http" {
        to = 8080 # the guest's HTTP port; address_mode "driver" advertises it
      }
    }

    task "web" {
      driver = "s2z-kata"

      config {
        # kernel and initrd default to the plugin's; set them per task if needed
        cmdline = "quiet"
        vcpus   = 1
        ports   = ["http"]

        scale_to_zero {
          enabled      = true
          idle_timeout = "2m"
        }
      }

      resources {
        cpu    = 500
        memory = 256 # MiB of guest RAM
      }

      service {
        name         = "web"
        port         = "http"
        address_mode = "driver" # the VM's own address, from the driver

        check {
          type         = "http"
          path         = "/healthz"
          interval     = "10s"
          timeout      = "2s"
          address_mode = "driver"
        }
      }
    }
  }
}
