#include "driver/msgpack_config.h"

#include <charconv>
#include <cmath>
#include <exception>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "driver/go_duration.h"

namespace s2z::driver {
namespace {


std::string_view stringOf(const msgpack::object& o) {
  if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
  return {o.via.bin.ptr, o.via.bin.size};
}

bool isString(const msgpack::object& o) {
  return o.type == msgpack::type::STR || o.type == msgpack::type::BIN;
}

// Numbers as go-cty encodes them, as a long double (exact for every integer
// up to 2^64). nullopt when o is not a number or a decimal string.
std::optional<long double> numberOf(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::POSITIVE_INTEGER: return static_cast<long double>(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return static_cast<long double>(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      if (!std::isfinite(o.via.f64)) return std::nullopt;
      return static_cast<long double>(o.via.f64);
    case msgpack::type::STR:
    case msgpack::type::BIN: {
      std::string_view s = stringOf(o);
      while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
      while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
      if (!s.empty() && s.front() == '+') s.remove_prefix(1);
      if (s.empty()) return std::nullopt;
      long double v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
      return v;
    }
    default: return std::nullopt;
  }
}

// Big-endian unsigned of n bytes at p.
uint64_t bigEndian(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

// What a msgpack value's first byte says about the bytes that follow.
struct Header {
  size_t lenBytes = 0;   // width of a length/count field after the byte
  size_t payload = 0;    // fixed payload after the length field
  uint64_t items = 0;    // fix list/map: its values (map: keys and values)
  bool container = false;
  bool sized = false;    // str/bin/ext: the length field adds to the payload
};

// nullopt for 0xc1, which msgpack never uses.
std::optional<Header> headerOf(uint8_t b) {
  Header h;
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return h;  // fixint, nil, bool
  if (b <= 0x8f) return Header{0, 0, 2u * (b & 0x0f), true, false};            // fixmap
  if (b <= 0x9f) return Header{0, 0, b & 0x0fu, true, false};                  // fixarray
  if (b <= 0xbf) return Header{0, b & 0x1fu, 0, false, false};                 // fixstr
  switch (b) {
    case 0xc4: case 0xd9: return Header{1, 0, 0, false, true};  // bin8, str8
    case 0xc5: case 0xda: return Header{2, 0, 0, false, true};  // bin16, str16
    case 0xc6: case 0xdb: return Header{4, 0, 0, false, true};  // bin32, str32
    case 0xc7: return Header{1, 1, 0, false, true};             // ext8 (+ type byte)
    case 0xc8: return Header{2, 1, 0, false, true};             // ext16
    case 0xc9: return Header{4, 1, 0, false, true};             // ext32
    case 0xca: return Header{0, 4, 0, false, false};            // float32
    case 0xcb: return Header{0, 8, 0, false, false};            // float64
    case 0xcc: case 0xd0: return Header{0, 1, 0, false, false}; // (u)int8
    case 0xcd: case 0xd1: return Header{0, 2, 0, false, false}; // (u)int16
    case 0xce: case 0xd2: return Header{0, 4, 0, false, false}; // (u)int32
    case 0xcf: case 0xd3: return Header{0, 8, 0, false, false}; // (u)int64
    case 0xd4: return Header{0, 2, 0, false, false};            // fixext1 (+ type byte)
    case 0xd5: return Header{0, 3, 0, false, false};            // fixext2
    case 0xd6: return Header{0, 5, 0, false, false};            // fixext4
    case 0xd7: return Header{0, 9, 0, false, false};            // fixext8
    case 0xd8: return Header{0, 17, 0, false, false};           // fixext16
    case 0xdc: case 0xde: return Header{2, 0, 0, true, false};  // array16, map16
    case 0xdd: case 0xdf: return Header{4, 0, 0, true, false};  // array32, map32
    default: return std::nullopt;
  }
}

// Walks the encoding once, building nothing, and enforces the limits of
// msgpack_config.h: at most kMaxConfigDepth nested lists/maps, kMaxConfigValues
// values in all, and no header announcing more items or bytes than the input
// has left. msgpack-cxx allocates a container's items as soon as it reads the
// header, so this runs first: what it lets through costs at most a small
// multiple of the input size to decode.
Result<void> checkShape(std::string_view bytes, std::string_view what) {
  auto fail = [&](size_t at, const std::string& why) -> Result<void> {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{}: not valid msgpack: {} (at byte {})", what, why, at));
  };
  // open[i]: values still to read in the i-th enclosing list/map; the
  // bottom entry is the document's one top-level value.
  std::vector<uint64_t> open{1};
  size_t pos = 0;
  size_t values = 0;
  while (true) {
    while (!open.empty() && open.back() == 0) open.pop_back();
    if (open.empty()) return okResult();
    --open.back();
    if (pos >= bytes.size()) return fail(pos, "truncated");
    if (++values > kMaxConfigValues) {
      return fail(pos, fmt::format("more than {} values", kMaxConfigValues));
    }
    const size_t at = pos;
    const auto b = static_cast<uint8_t>(bytes[pos++]);
    const size_t left = bytes.size() - pos;
    auto header = headerOf(b);
    if (!header) return fail(at, fmt::format("byte 0x{:02x} starts no msgpack value", b));
    auto [lenBytes, payload, items, container, sized] = *header;
    if (left < lenBytes) return fail(at, "truncated");
    uint64_t n = bigEndian(bytes.data() + pos, lenBytes);
    pos += lenBytes;
    const size_t rest = bytes.size() - pos;
    if (container) {
      if (lenBytes > 0) items = (b == 0xde || b == 0xdf) ? 2 * n : n;
      // Every item takes at least one byte.
      if (items > rest) {
        return fail(at, fmt::format("a list/map announces {} values but {} bytes follow", items, rest));
      }
      if (open.size() > kMaxConfigDepth) {
        return fail(at, fmt::format("lists/maps nested deeper than {} levels", kMaxConfigDepth));
      }
      open.push_back(items);
      continue;
    }
    if (sized) payload += n;
    if (payload > rest) {
      return fail(at, fmt::format("a value announces {} bytes but {} follow", payload, rest));
    }
    pos += payload;
  }
}

}  // namespace

std::string describeValue(const msgpack::object& value) {
  switch (value.type) {
    case msgpack::type::NIL: return "null";
    case msgpack::type::BOOLEAN: return value.via.boolean ? "true" : "false";
    case msgpack::type::POSITIVE_INTEGER: return fmt::format("{}", value.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return fmt::format("{}", value.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return fmt::format("{}", value.via.f64);
    case msgpack::type::STR:
    case msgpack::type::BIN: {
      std::string_view s = stringOf(value);
      std::string shown(s.substr(0, 64));
      for (char& c : shown) {
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      }
      return fmt::format("\"{}{}\"", shown, s.size() > 64 ? "..." : "");
    }
    case msgpack::type::ARRAY: return "a list";
    case msgpack::type::MAP: return "a block/map";
    default: return "an unsupported msgpack value";
  }
}

Result<MsgpackDocument> MsgpackDocument::parse(std::string_view bytes, std::string_view what) {
  if (bytes.size() > kMaxConfigBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{}: {} bytes is larger than the {} byte limit", what,
                                 bytes.size(), kMaxConfigBytes));
  }
  if (bytes.empty()) {
    // An empty body: nil, which reads as a config with every key absent.
    static const char kNil = '\xc0';
    return parse(std::string_view(&kNil, 1), what);
  }
  if (auto shape = checkShape(bytes, what); !shape.ok()) return shape.error();
  // The same limits again in msgpack-cxx's terms (per list/map, per string),
  // in case its reading ever differs from checkShape's.
  size_t elements = std::min(bytes.size(), kMaxConfigValues);
  msgpack::unpack_limit limit(elements, elements, bytes.size(), bytes.size(), bytes.size(),
                              kMaxConfigDepth + 1);
  try {
    size_t offset = 0;
    auto handle = std::make_unique<msgpack::object_handle>(
        msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit));
    if (offset != bytes.size()) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("{}: {} unexpected bytes after the msgpack value", what,
                                   bytes.size() - offset));
    }
    return MsgpackDocument(std::move(handle));
  } catch (const std::exception& e) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{}: not valid msgpack: {}", what, e.what()));
  }
}

Result<ConfigObject> ConfigObject::from(const msgpack::object& obj, std::string path) {
  if (obj.type == msgpack::type::NIL) return ConfigObject(nullptr, std::move(path));
  if (obj.type != msgpack::type::MAP) {
    std::string where = path.empty() ? "config" : fmt::format("config key \"{}\"", path);
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{}: expected a block of key/values, got {}", where,
                                 describeValue(obj)));
  }
  ConfigObject result(&obj, path);
  std::set<std::string_view> seen;
  for (uint32_t i = 0; i < obj.via.map.size; ++i) {
    const msgpack::object& key = obj.via.map.ptr[i].key;
    if (!isString(key)) {
      return result.keyError("", fmt::format("a key is not a string but {}", describeValue(key)));
    }
    if (!seen.insert(stringOf(key)).second) {
      return result.keyError(stringOf(key), "appears more than once");
    }
  }
  return result;
}

std::string ConfigObject::keyName(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  if (key.empty()) return path_;
  return path_ + "." + std::string(key);
}

Error ConfigObject::keyError(std::string_view key, std::string_view what) const {
  return makeError(ErrorCode::kInvalidArgument,
                   fmt::format("config key \"{}\": {}", keyName(key), what));
}

Result<const msgpack::object*> ConfigObject::lookup(std::string_view key) {
  read_.emplace(key);
  if (map_ == nullptr) return static_cast<const msgpack::object*>(nullptr);
  for (uint32_t i = 0; i < map_->via.map.size; ++i) {
    const auto& kv = map_->via.map.ptr[i];
    if (stringOf(kv.key) == key) {
      if (kv.val.type == msgpack::type::NIL) return static_cast<const msgpack::object*>(nullptr);
      return &kv.val;
    }
  }
  return static_cast<const msgpack::object*>(nullptr);
}

Result<std::optional<std::string>> ConfigObject::string(std::string_view key) {
  auto found = lookup(key);
  if (!found.ok()) return found.error();
  const msgpack::object* v = *found;
  if (v == nullptr) return std::optional<std::string>();
  if (isString(*v)) {
    std::string_view s = stringOf(*v);
    if (s.find('\0') != std::string_view::npos) return keyError(key, "contains a NUL byte");
    return std::optional<std::string>(std::string(s));
  }
  // HCL would have converted a number or bool to a string; do the same.
  if (v->type == msgpack::type::BOOLEAN) {
    return std::optional<std::string>(v->via.boolean ? "true" : "false");
  }
  if (v->type == msgpack::type::POSITIVE_INTEGER || v->type == msgpack::type::NEGATIVE_INTEGER) {
    return std::optional<std::string>(describeValue(*v));
  }
  return keyError(key, fmt::format("expected a string, got {}", describeValue(*v)));
}

Result<std::optional<bool>> ConfigObject::boolean(std::string_view key) {
  auto found = lookup(key);
  if (!found.ok()) return found.error();
  const msgpack::object* v = *found;
  if (v == nullptr) return std::optional<bool>();
  if (v->type == msgpack::type::BOOLEAN) return std::optional<bool>(v->via.boolean);
  if (isString(*v)) {
    if (stringOf(*v) == "true") return std::optional<bool>(true);
    if (stringOf(*v) == "false") return std::optional<bool>(false);
  }
  return keyError(key, fmt::format("expected true or false, got {}", describeValue(*v)));
}

Result<std::optional<int64_t>> ConfigObject::integer(std::string_view key, int64_t min,
                                                     int64_t max) {
  auto found = lookup(key);
  if (!found.ok()) return found.error();
  const msgpack::object* v = *found;
  if (v == nullptr) return std::optional<int64_t>();
  std::optional<long double> n = numberOf(*v);
  if (!n || std::floor(*n) != *n || *n < static_cast<long double>(min) ||
      *n > static_cast<long double>(max)) {
    return keyError(key, fmt::format("expected a whole number from {} to {}, got {}", min, max,
                                     describeValue(*v)));
  }
  return std::optional<int64_t>(static_cast<int64_t>(*n));
}

Result<std::optional<std::vector<std::string>>> ConfigObject::stringList(std::string_view key) {
  using Out = std::optional<std::vector<std::string>>;
  auto found = lookup(key);
  if (!found.ok()) return found.error();
  const msgpack::object* v = *found;
  if (v == nullptr) return Out();
  if (v->type != msgpack::type::ARRAY) {
    return keyError(key, fmt::format("expected a list of strings, got {}", describeValue(*v)));
  }
  std::vector<std::string> out;
  for (uint32_t i = 0; i < v->via.array.size; ++i) {
    const msgpack::object& item = v->via.array.ptr[i];
    if (!isString(item) || stringOf(item).find('\0') != std::string_view::npos) {
      return keyError(key, fmt::format("expected a list of strings, item {} is {}", i,
                                       describeValue(item)));
    }
    out.emplace_back(stringOf(item));
  }
  return Out(std::move(out));
}

Result<std::optional<std::chrono::milliseconds>> ConfigObject::duration(std::string_view key) {
  using Out = std::optional<std::chrono::milliseconds>;
  auto found = lookup(key);
  if (!found.ok()) return found.error();
  const msgpack::object* v = *found;
  if (v == nullptr) return Out();
  const char* expected = "expected a positive duration like \"5m\", \"10s\", \"250ms\" or \"1h30m\"";
  if (!isString(*v)) return keyError(key, fmt::format("{}, got {}", expected, describeValue(*v)));
  auto parsed = parseGoDuration(stringOf(*v));
  if (!parsed.ok()) {
    return keyError(key, fmt::format("{}, got {}", expected, describeValue(*v)));
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*parsed);
  if (ms.count() <= 0) {
    return keyError(key, fmt::format("{}, got {}", expected, describeValue(*v)));
  }
  return Out(ms);
}

Result<std::optional<ConfigObject>> ConfigObject::block(std::string_view key) {
  using Out = std::optional<ConfigObject>;
  auto found = lookup(key);
  if (!found.ok()) return found.error();
  const msgpack::object* v = *found;
  if (v == nullptr) return Out();
  // A BlockList/BlockSet would arrive as an array of one map; accept that too.
  if (v->type == msgpack::type::ARRAY) {
    if (v->via.array.size == 0) return Out();
    if (v->via.array.size > 1) return keyError(key, "expected one block, got several");
    v = &v->via.array.ptr[0];
  }
  auto obj = ConfigObject::from(*v, keyName(key));
  if (!obj.ok()) return obj.error();
  return Out(std::move(obj).value());
}

Result<void> ConfigObject::rejectUnknownKeys() const {
  if (map_ == nullptr) return okResult();
  for (uint32_t i = 0; i < map_->via.map.size; ++i) {
    std::string_view key = stringOf(map_->via.map.ptr[i].key);
    if (read_.find(key) == read_.end()) {
      return keyError(key, "unknown key (not part of this driver's schema)");
    }
  }
  return okResult();
}

}  // namespace s2z::driver
