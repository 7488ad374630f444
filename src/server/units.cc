#include "server/units.h"

#include <array>
#include <charconv>
#include <limits>
#include <span>
#include <utility>

#include <fmt/format.h>

namespace depot::server {
namespace {

struct Unit {
  std::string_view suffix;
  uint64_t factor;
};

// Splits "64MiB" into 64 and "MiB"; fails unless the text starts with digits.
ParseResult<std::pair<uint64_t, std::string_view>> split_number(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return std::string("the number is too large");
  if (ec != std::errc{}) return std::string("it does not start with a whole number");
  return std::pair{value, text.substr(end - text.data())};
}

ParseResult<uint64_t> scale(std::string_view text, std::span<const Unit> units,
                            bool unit_required) {
  DEPOT_TRY(auto parts, split_number(text));
  auto [value, suffix] = parts;
  if (suffix.empty() && !unit_required) return value;
  for (const Unit& unit : units) {
    if (suffix != unit.suffix) continue;
    if (value > std::numeric_limits<uint64_t>::max() / unit.factor) {
      return std::string("the value is too large");
    }
    return value * unit.factor;
  }
  if (suffix.empty()) return std::string("a unit is missing");
  return fmt::format("unknown unit \"{}\"", suffix);
}

constexpr std::array kDurationUnits = {
    Unit{"ms", 1},
    Unit{"s", 1000},
    Unit{"m", 60'000},
    Unit{"h", 3'600'000},
};

constexpr std::array kSizeUnits = {
    Unit{"B", 1},
    Unit{"K", 1ull << 10},
    Unit{"KiB", 1ull << 10},
    Unit{"M", 1ull << 20},
    Unit{"MiB", 1ull << 20},
    Unit{"G", 1ull << 30},
    Unit{"GiB", 1ull << 30},
    Unit{"T", 1ull << 40},
    Unit{"TiB", 1ull << 40},
};

constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 8> kLogLevels = {{
    {"trace", spdlog::level::trace},
    {"debug", spdlog::level::debug},
    {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},
    {"warning", spdlog::level::warn},
    {"error", spdlog::level::err},
    {"critical", spdlog::level::critical},
    {"off", spdlog::level::off},
}};

}  // namespace

ParseResult<std::chrono::milliseconds> parse_duration(std::string_view text) {
  DEPOT_TRY(uint64_t ms, scale(text, kDurationUnits, /*unit_required=*/true));
  if (ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::string("the value is too large");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::string format_duration(std::chrono::milliseconds duration) {
  auto ms = static_cast<uint64_t>(duration.count());
  for (auto it = kDurationUnits.rbegin(); it != kDurationUnits.rend(); ++it) {
    if (ms != 0 && ms % it->factor == 0)
      return std::to_string(ms / it->factor) + std::string(it->suffix);
  }
  return std::to_string(ms) + "ms";
}

ParseResult<uint64_t> parse_size(std::string_view text) {
  return scale(text, kSizeUnits, /*unit_required=*/false);
}

std::string format_size(uint64_t bytes) {
  for (std::string_view suffix : {"TiB", "GiB", "MiB", "KiB"}) {
    for (const Unit& unit : kSizeUnits) {
      if (unit.suffix == suffix && bytes != 0 && bytes % unit.factor == 0) {
        return std::to_string(bytes / unit.factor) + std::string(suffix);
      }
    }
  }
  return std::to_string(bytes) + "B";
}

std::string describe_size(uint64_t bytes) {
  constexpr std::array<std::string_view, 5> kSuffixes = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto value = static_cast<double>(bytes);
  size_t i = 0;
  while (value >= 1024 && i + 1 < kSuffixes.size()) {
    value /= 1024;
    ++i;
  }
  return i == 0 ? std::to_string(bytes) + "B" : fmt::format("{:.1f}{}", value, kSuffixes[i]);
}

ParseResult<spdlog::level::level_enum> parse_log_level(std::string_view text) {
  for (const auto& [name, level] : kLogLevels) {
    if (name == text) return level;
  }
  return std::string("unknown log level");
}

std::string_view log_level_name(spdlog::level::level_enum level) {
  for (const auto& [name, value] : kLogLevels) {
    if (value == level) return name;
  }
  return "info";
}

}  // namespace depot::server
