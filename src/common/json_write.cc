#include "common/json_write.h"

#include <cstdint>

namespace depot {
namespace {

// Length of the valid UTF-8 sequence starting at text[at], or 0 if it is not one (overlong forms,
// surrogates and code points past U+10FFFF are invalid, per RFC 3629).
std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
  auto byte = [&](std::size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t b0 = byte(at);
  const std::size_t left = text.size() - at;
  auto continuation = [&](std::size_t i) { return (byte(i) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    return left >= 2 && continuation(at + 1) ? 2 : 0;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3 || !continuation(at + 1) || !continuation(at + 2)) return 0;
    const uint8_t b1 = byte(at + 1);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4 || !continuation(at + 1) || !continuation(at + 2) || !continuation(at + 3)) {
      return 0;
    }
    const uint8_t b1 = byte(at + 1);
    if (b0 == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      // Copy the run of plain ASCII in one go.
      std::size_t end = i + 1;
      while (end < text.size()) {
        const auto d = static_cast<uint8_t>(text[end]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
        ++end;
      }
      out.append(text.substr(i, end - i));
      i = end;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        default:
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
      }
      ++i;
      continue;
    }
    const std::size_t n = utf8_sequence_length(text, i);
    if (n == 0) {
      out.append("\\ufffd");
      ++i;
      continue;
    }
    // U+2028 and U+2029 (E2 80 A8/A9) end lines in JavaScript source.
    if (n == 3 && c == 0xE2 && static_cast<uint8_t>(text[i + 1]) == 0x80 &&
        (static_cast<uint8_t>(text[i + 2]) & 0xFE) == 0xA8) {
      out.append(static_cast<uint8_t>(text[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  out.push_back('"');
}

}  // namespace depot
