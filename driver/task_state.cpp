#include "driver/task_state.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/instance_record_json.h"

namespace s2z::driver {

std::string encodeTaskState(const agent::InstanceRecord& record) {
  nlohmann::json state = {{"version", kTaskStateVersion}, {"instance", agent::toJson(record)}};
  return state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<agent::InstanceRecord> decodeTaskState(std::string_view bytes) {
  if (bytes.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "driver_state is empty");
  }
  nlohmann::json state = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (state.is_discarded() || !state.is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "driver_state is not a JSON object");
  }
  auto version = state.find("version");
  if (version == state.end() || !version->is_number_integer()) {
    return makeError(ErrorCode::kInvalidArgument, "driver_state has no integer \"version\"");
  }
  if (version->get<int64_t>() != kTaskStateVersion) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("driver_state version {} is not supported (this plugin reads "
                                 "version {}); was it written by a newer s2z-kata?",
                                 version->get<int64_t>(), kTaskStateVersion));
  }
  auto instance = state.find("instance");
  if (instance == state.end() || !instance->is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "driver_state has no \"instance\" object");
  }
  auto record = agent::instanceRecordFromJson(*instance);
  if (!record.ok()) return record.error().wrap("driver_state");
  return record;
}

}  // namespace s2z::driver
