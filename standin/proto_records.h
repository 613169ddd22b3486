// Conversions from the plugin's protobuf messages to the stand-in's plain
// records (standin/records.h).
#pragma once

#include "hashicorp/nomad/plugins/base/proto/base.pb.h"
#include "hashicorp/nomad/plugins/drivers/proto/driver.pb.h"
#include "standin/records.h"

namespace s2z::standin {

namespace drivers = hashicorp::nomad::plugins::drivers::proto;
namespace base = hashicorp::nomad::plugins::base::proto;

// Renders an attribute as the client does for node attributes: bools as
// true/false, numbers in Go %v form, the unit appended.
std::string renderAttribute(const hashicorp::nomad::plugins::shared::structs::Attribute& a);

FingerprintRecord toRecord(const drivers::FingerprintResponse& r);
TaskEventRecord toRecord(const drivers::DriverTaskEvent& e);
StatsSample toRecord(const drivers::TaskStatsResponse& r, const std::string& taskId);
ExitResult toRecord(const drivers::WaitTaskResponse& r);
Capabilities toRecord(const drivers::DriverCapabilities& c);
PluginInfoSummary toRecord(const base::PluginInfoResponse& r);

}  // namespace s2z::standin
