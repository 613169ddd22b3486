// Reads msgpack-encoded configuration exactly as the Nomad client produces it
// (protocol doc §3.3: go-cty's encoder): a map holding every schema key, nil
// for absent values, integers in any width, float64 (float32 accepted),
// numbers that did not fit as decimal strings, strings as str or bin.
// Every accessor names the full key ("scale_to_zero.idle_timeout") in its
// error, so a user sees which line of the job or agent config is wrong.
#pragma once

#include <msgpack.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace s2z::driver {

// Limits of what MsgpackDocument::parse accepts (Nomad's configs are a few
// KiB, nested three levels): the encoded size, the nesting of lists and maps,
// and the number of values in all (map keys count). Within them a document
// costs at most a few MiB to decode, whatever its headers claim.
inline constexpr size_t kMaxConfigBytes = 1u << 20;
inline constexpr size_t kMaxConfigDepth = 32;
inline constexpr size_t kMaxConfigValues = 1u << 16;

// Owns the decoded msgpack tree; ConfigObjects point into it.
class MsgpackDocument {
 public:
  // Decodes bytes (what = "plugin config" / "task config", for messages).
  // Empty bytes decode to nil. Fails with kInvalidArgument on malformed or
  // truncated msgpack, trailing bytes, or input beyond the limits above
  // (the message names the limit); never crashes and never allocates more
  // than a small multiple of the input size.
  static Result<MsgpackDocument> parse(std::string_view bytes, std::string_view what);

  const msgpack::object& root() const { return handle_->get(); }

 private:
  explicit MsgpackDocument(std::unique_ptr<msgpack::object_handle> h) : handle_(std::move(h)) {}
  std::unique_ptr<msgpack::object_handle> handle_;
};

// One map level of a config (the whole config or one block). Accessors return
// nullopt for nil (absent) values, the typed value otherwise, or a
// kInvalidArgument error: `config key "vcpus": expected a whole number from 1
// to 64, got "many"`. Reading a key marks it known; rejectUnknownKeys() then
// reports any key nobody read. Not thread-safe; borrows the document.
class ConfigObject {
 public:
  // obj must be a map or nil (nil reads as an empty map); path is the key
  // prefix for messages ("" at the top, "scale_to_zero" for a block).
  static Result<ConfigObject> from(const msgpack::object& obj, std::string path);

  Result<std::optional<std::string>> string(std::string_view key);
  Result<std::optional<bool>> boolean(std::string_view key);
  // A whole number in [min, max]; floats with no fraction and decimal
  // strings are accepted (both can come out of HCL).
  Result<std::optional<int64_t>> integer(std::string_view key, int64_t min, int64_t max);
  Result<std::optional<std::vector<std::string>>> stringList(std::string_view key);
  // A Go duration string ("5m"); must be > 0.
  Result<std::optional<std::chrono::milliseconds>> duration(std::string_view key);
  Result<std::optional<ConfigObject>> block(std::string_view key);

  // kInvalidArgument naming the first key that no accessor read.
  Result<void> rejectUnknownKeys() const;

  // The full key name for messages: path + "." + key.
  std::string keyName(std::string_view key) const;
  // `config key "<full key>": <what>`, kInvalidArgument.
  Error keyError(std::string_view key, std::string_view what) const;

 private:
  ConfigObject(const msgpack::object* map, std::string path) : map_(map), path_(std::move(path)) {}
  // The value for key (nullptr when the key is absent or the value is nil).
  Result<const msgpack::object*> lookup(std::string_view key);

  const msgpack::object* map_;  // nullptr: empty
  std::string path_;
  std::set<std::string, std::less<>> read_;
};

// A short human rendering of a msgpack value for error messages:
// "many" (quoted string), 3, 2.5, true, null, a list, a map.
std::string describeValue(const msgpack::object& value);

}  // namespace s2z::driver
