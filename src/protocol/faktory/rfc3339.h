#pragma once
// Faktory's timestamps: RFC 3339 text (Go's time.RFC3339Nano) <-> Unix nanoseconds.
#include <optional>
#include <string>
#include <string_view>

#include "jobs/job.h"

namespace depot::faktory {

// Parses what Go's time.Parse(time.RFC3339Nano, s) accepts: "YYYY-MM-DDTHH:MM:SS", an optional
// fraction of one or more digits (digits past the ninth are dropped, as Go does), then "Z" or an
// offset "+HH:MM"/"-HH:MM". The result is UTC. Times outside the int64 nanosecond range
// (1677..2262) saturate to its ends, so a far-future "at" still means "far in the future".
std::optional<jobs::UnixNanos> parse_rfc3339(std::string_view text);

// Formats as Go's t.UTC().Format(time.RFC3339Nano): "2024-05-01T12:00:00.123456789Z", the
// fraction's trailing zeros trimmed and no fraction at all when it is zero.
std::string format_rfc3339(jobs::UnixNanos nanos);

}  // namespace depot::faktory
