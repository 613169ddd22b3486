// The snapshot manifest (vmm/snapshot_manifest.h decodeSnapshotManifest),
// read before every restore from a file in the snapshot dir. Byte 0 bit 0
// picks what the rest is: 0, manifest.json's text as it is; 1, the
// "manifest" body only, wrapped with a checksum that matches it, so the
// fuzzer reaches the field checks behind the CRC (which random bytes never
// pass). Properties: no crash, leak, UB or escaping exception; a refusal is
// kDataLoss with a message; a manifest that decodes re-encodes
// (encodeSnapshotManifest) to text that decodes to the same manifest.
#include <zlib.h>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.h"
#include "vmm/snapshot_manifest.h"

namespace {

using s2z::vmm::SnapshotManifest;

std::string withMatchingChecksum(std::string_view bodyText) {
  auto body = nlohmann::json::parse(bodyText, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return std::string(bodyText);
  std::string dumped = body.dump();
  auto crc = ::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(dumped.data()),
                     static_cast<uInt>(dumped.size()));
  return nlohmann::json{{"manifest", std::move(body)}, {"crc32", crc}}.dump();
}

bool same(const SnapshotManifest& a, const SnapshotManifest& b) {
  if (a.stamp.owner != b.stamp.owner || a.stamp.generation != b.stamp.generation) return false;
  if (a.files.size() != b.files.size()) return false;
  for (size_t i = 0; i < a.files.size(); ++i) {
    const auto& x = a.files[i];
    const auto& y = b.files[i];
    if (x.path != y.path || x.size != y.size || x.crc32 != y.crc32) return false;
    if (!x.crc32 && (x.inode != y.inode || x.ctimeNs != y.ctimeNs)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest = s2z::fuzz::bytesOf(data + 1, size - 1);
  std::string text = (data[0] & 1) ? withMatchingChecksum(rest) : std::string(rest);

  auto decoded = s2z::vmm::decodeSnapshotManifest(text);
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.error().code == s2z::ErrorCode::kDataLoss, "code %s: %s",
               s2z::errorCodeName(decoded.error().code), decoded.error().message.c_str());
    FUZZ_CHECK(!decoded.error().message.empty(), "empty error message");
    return 0;
  }
  auto again = s2z::vmm::decodeSnapshotManifest(s2z::vmm::encodeSnapshotManifest(*decoded));
  FUZZ_CHECK(again.ok(), "re-encoded manifest refused: %s", again.error().message.c_str());
  FUZZ_CHECK(same(*decoded, *again), "re-encoded manifest decodes to another one");
  return 0;
}
