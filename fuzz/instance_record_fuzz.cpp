// The instance record, both ways a new plugin reads it back:
//  - driver_state bytes from Nomad's TaskHandle (driver/task_state.h
//    decodeTaskState: {"version": 1, "instance": {...}});
//  - <runDir>/instance.json (agent/run_dir.cpp loadRecord: the bytes parsed
//    as JSON, then agent/instance_record_json.h instanceRecordFromJson),
//    every record version it reads (1, 3, 4: the seeds hold each).
// Properties: no crash, leak or UB; refusals are INVALID_ARGUMENT; a record
// that decodes re-encodes to JSON that decodes to the same record (what a
// plugin writes after recovering an old task must read back unchanged).
#include <nlohmann/json.hpp>

#include "agent/instance_record_json.h"
#include "driver/task_state.h"
#include "fuzz/fuzz_check.h"

namespace {

using nlohmann::json;
using s2z::agent::InstanceRecord;

void expectRoundTrip(const InstanceRecord& record) {
  json first = s2z::agent::toJson(record);
  auto again = s2z::agent::instanceRecordFromJson(first);
  FUZZ_CHECK(again.ok(), "toJson output does not decode: %s", again.error().message.c_str());
  FUZZ_CHECK(s2z::agent::toJson(*again) == first, "record changed in a JSON round trip");

  std::string state = s2z::driver::encodeTaskState(record);
  auto back = s2z::driver::decodeTaskState(state);
  FUZZ_CHECK(back.ok(), "encodeTaskState output does not decode: %s",
             back.error().message.c_str());
  FUZZ_CHECK(s2z::agent::toJson(*back) == first, "record changed in a driver_state round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = s2z::fuzz::bytesOf(data, size);

  auto fromState = s2z::driver::decodeTaskState(bytes);
  s2z::fuzz::expectOkOrInvalid(fromState, "driver_state");
  if (fromState.ok()) expectRoundTrip(*fromState);

  json parsed = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return 0;
  auto record = s2z::agent::instanceRecordFromJson(parsed);
  s2z::fuzz::expectOkOrInvalid(record, "instance.json");
  if (record.ok()) expectRoundTrip(*record);
  // A driver_state whose wrapper is wrong still holds a record to decode.
  if (parsed.is_object()) {
    auto inner = parsed.find("instance");
    if (inner != parsed.end()) {
      auto r = s2z::agent::instanceRecordFromJson(*inner);
      s2z::fuzz::expectOkOrInvalid(r, "driver_state instance");
      if (r.ok()) expectRoundTrip(*r);
    }
  }
  return 0;
}
