// The wake ring buffer's records as the plugin reads them (bpf/wake_record.h);
// fuzz/wake_record_fuzz.cpp runs the same rules over arbitrary records.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "bpf/wake_record.h"

namespace s2z::bpf {

TEST_CASE("wake records: a whole record wakes its interface; a short one or one for interface 0 wakes nothing") {
  s2z_wake_event ev{};
  ev.ifindex = 7;
  ev.timestamp_ns = 123456789012345ull;
  auto event = decodeWakeRecord(&ev, sizeof ev);
  REQUIRE(event.has_value());
  CHECK(event->ifindex == 7);
  CHECK(event->timestampNs == 123456789012345ull);

  CHECK_FALSE(decodeWakeRecord(&ev, sizeof ev - 1).has_value());  // not ours
  ev.ifindex = 0;
  CHECK_FALSE(decodeWakeRecord(&ev, sizeof ev).has_value());  // names no device

  // A longer record (a newer producer appending fields) is read for the
  // fields this plugin knows.
  std::vector<unsigned char> longer(sizeof ev + 8, 0xab);
  ev.ifindex = 9;
  std::memcpy(longer.data(), &ev, sizeof ev);
  auto fromLonger = decodeWakeRecord(longer.data(), longer.size());
  REQUIRE(fromLonger.has_value());
  CHECK(fromLonger->ifindex == 9);
}

}  // namespace s2z::bpf
