// The wake ring buffer's records (bpf/wake_record.h decodeWakeRecord), as
// libbpf hands them to the plugin's callback. The input is a run of records,
// each a length byte and that many bytes (what ring_buffer__consume would
// deliver, whatever a future or foreign producer wrote). Properties: no
// crash or UB, no read past a record; a record shorter than struct
// s2z_wake_event, or for interface 0, wakes nothing; any other gives exactly
// the interface and timestamp in its first 16 bytes.
#include <algorithm>
#include <cstring>
#include <vector>

#include "bpf/wake_record.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t at = 0;
  while (at < size) {
    size_t len = std::min<size_t>(data[at], size - at - 1);
    // A copy of exactly the record's bytes, so ASan sees any read beyond it.
    std::vector<uint8_t> record(data + at + 1, data + at + 1 + len);
    at += 1 + len;

    auto event = s2z::bpf::decodeWakeRecord(record.data(), record.size());
    if (len < sizeof(s2z_wake_event)) {
      FUZZ_CHECK(!event, "a %zu-byte record was decoded", len);
      continue;
    }
    uint32_t ifindex = 0;
    uint64_t timestamp = 0;
    std::memcpy(&ifindex, record.data(), sizeof ifindex);
    std::memcpy(&timestamp, record.data() + 8, sizeof timestamp);
    if (ifindex == 0) {
      FUZZ_CHECK(!event, "a record for interface 0 was decoded");
      continue;
    }
    FUZZ_CHECK(event.has_value(), "a whole record for interface %u was skipped", ifindex);
    FUZZ_CHECK(event->ifindex == ifindex && event->timestampNs == timestamp,
               "decoded %u/%llu, the record holds %u/%llu", event->ifindex,
               static_cast<unsigned long long>(event->timestampNs), ifindex,
               static_cast<unsigned long long>(timestamp));
  }
  return 0;
}
