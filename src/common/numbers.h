#pragma once
// Whole-string integer parsing, for names, settings and stored counters: "42" is 42, while "42x",
// " 42", "", and a value out of T's range are nothing (std::from_chars alone accepts a prefix).
#include <charconv>
#include <concepts>
#include <optional>
#include <string_view>

namespace depot {

// Decimal digits, with a leading '-' for signed types.
template <std::integral T>
std::optional<T> parse_integer(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop != end) return std::nullopt;
  return value;
}

}  // namespace depot
