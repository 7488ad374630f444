#pragma once
// Durations, byte sizes and log levels as operators write them in settings.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <spdlog/common.h>

#include "server/errc.h"

namespace depot::server {

// "250ms", "10s", "5m", "1h"; a unit is required so "10" cannot mean two things.
ParseResult<std::chrono::milliseconds> parse_duration(std::string_view text);
// The shortest exact spelling: 10000ms -> "10s", 300000ms -> "5m".
std::string format_duration(std::chrono::milliseconds duration);

// Bytes: "1048576", "512KiB", "64MiB", "2GiB" (K, M, G, T are accepted for KiB, MiB, GiB, TiB).
ParseResult<uint64_t> parse_size(std::string_view text);
std::string format_size(uint64_t bytes);
// Rounded for people: "117.7MiB".
std::string describe_size(uint64_t bytes);

// trace, debug, info, warn (or warning), error, critical, off.
ParseResult<spdlog::level::level_enum> parse_log_level(std::string_view text);
std::string_view log_level_name(spdlog::level::level_enum level);

}  // namespace depot::server
