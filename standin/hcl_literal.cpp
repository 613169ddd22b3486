#include "standin/hcl_literal.h"

#include <cctype>

namespace s2z::standin {

namespace {

class LiteralParser {
 public:
  explicit LiteralParser(const std::string& text) : text_(text) {}

  Result<CtyValue> parseAll() {
    auto v = parseValue();
    if (!v.ok()) return v;
    skipSpace();
    if (pos_ != text_.size()) return fail("unexpected text");
    return v;
  }

 private:
  Error fail(const std::string& why) const {
    return makeError(ErrorCode::kInvalidArgument,
                     "cannot evaluate literal `" + text_ + "`: " + why + " at offset " +
                         std::to_string(pos_));
  }
  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool peek(char c) {
    skipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  bool consume(char c) {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }

  Result<CtyValue> parseValue() {
    skipSpace();
    if (pos_ >= text_.size()) return fail("value expected");
    char c = text_[pos_];
    if (c == '"') {
      auto s = parseString();
      if (!s.ok()) return s.error();
      return CtyValue::string(std::move(*s));
    }
    if (c == '[') return parseTuple();
    if (c == '{') return parseObject();
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return parseNumber();
    std::string word = identifier();
    if (word == "true") return CtyValue::boolean(true);
    if (word == "false") return CtyValue::boolean(false);
    if (word == "null") return CtyValue::null();
    return fail("unsupported expression \"" + word + "\"");
  }

  std::string identifier() {
    skipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
                                   text_[pos_] == '_' || text_[pos_] == '-')) {
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  Result<CtyValue> parseNumber() {
    size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    while (pos_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.' ||
            text_[pos_] == 'e' || text_[pos_] == 'E' ||
            ((text_[pos_] == '+' || text_[pos_] == '-') &&
             (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E')))) {
      ++pos_;
    }
    auto d = Decimal::parse(text_.substr(start, pos_ - start));
    if (!d.ok()) return fail(d.error().message);
    return CtyValue::number(std::move(*d));
  }

  Result<std::string> parseString() {
    ++pos_;  // opening quote
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) break;
      char e = text_[pos_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        default: return fail(std::string("unsupported escape \\") + e);
      }
    }
    if (pos_ >= text_.size()) return fail("unterminated string");
    ++pos_;  // closing quote
    return out;
  }

  Result<CtyValue> parseTuple() {
    ++pos_;
    std::vector<CtyValue> items;
    while (!consume(']')) {
      auto v = parseValue();
      if (!v.ok()) return v;
      items.push_back(std::move(*v));
      if (!consume(',') && !peek(']')) return fail("',' or ']' expected");
    }
    return CtyValue::list(std::move(items));
  }

  Result<CtyValue> parseObject() {
    ++pos_;
    std::map<std::string, CtyValue> fields;
    while (!consume('}')) {
      std::string key;
      if (peek('"')) {
        auto s = parseString();
        if (!s.ok()) return s.error();
        key = std::move(*s);
      } else {
        key = identifier();
      }
      if (key.empty()) return fail("object key expected");
      if (!consume('=') && !consume(':')) return fail("'=' expected");
      auto v = parseValue();
      if (!v.ok()) return v;
      fields[key] = std::move(*v);
      if (!consume(',')) {
        // HCL also separates object items by newlines.
      }
    }
    return CtyValue::map(std::move(fields));
  }

  const std::string& text_;
  size_t pos_ = 0;
};

}  // namespace

Result<CtyValue> evalHclLiteral(const std::string& expression) {
  return LiteralParser(expression).parseAll();
}

}  // namespace s2z::standin
