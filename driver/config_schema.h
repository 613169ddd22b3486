// The hclspec schemas this driver declares to Nomad: the agent's
// `plugin "s2z-kata" { config {} }` block (ConfigSchema) and a job task's
// `config {}` block (TaskConfigSchema). Key names are a public interface:
// jobs and agent configs in the wild spell them; never rename one.
//
// Rules from the protocol doc §2.3: the top level is an Object whose map
// keys imply the HCL names of Attr/Block children; an Attr inside a Default
// has no implied name, so it carries an explicit one; Literal values are HCL
// expressions (strings quoted).
#pragma once

#include "hashicorp/nomad/plugins/shared/hclspec/hcl_spec.pb.h"

namespace s2z::driver {

namespace hclspec = ::hashicorp::nomad::plugins::shared::hclspec;

// Plugin config: hypervisor, qemu_path, cloud_hypervisor_path, accelerator,
// state_dir, kernel, initrd, subnet, idle_timeout, health_check_mark,
// health_check_cgroup, kata_config.
hclspec::Spec pluginConfigSpec();

// Task config: kernel, initrd, rootfs, cmdline, vcpus, ports, hypervisor,
// block scale_to_zero { enabled, idle_timeout }.
hclspec::Spec taskConfigSpec();

}  // namespace s2z::driver
