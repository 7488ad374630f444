#pragma once
// RFC 3339 timestamps as Go writes them (time.RFC3339Nano) <-> Unix nanoseconds: Faktory's job
// timestamps, and the admin API's.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace depot {

// Parses what Go's time.Parse(time.RFC3339Nano, s) accepts: "YYYY-MM-DDTHH:MM:SS", an optional
// fraction of one or more digits (digits past the ninth are dropped, as Go does), then "Z" or an
// offset "+HH:MM"/"-HH:MM". The result is UTC. Times outside the int64 nanosecond range
// (1677..2262) saturate to its ends, so a far-future "at" still means "far in the future".
std::optional<int64_t> parse_rfc3339(std::string_view text);

// Formats as Go's t.UTC().Format(time.RFC3339Nano): "2024-05-01T12:00:00.123456789Z", the
// fraction's trailing zeros trimmed and no fraction at all when it is zero.
std::string format_rfc3339(int64_t nanos);

}  // namespace depot
