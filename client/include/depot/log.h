#pragma once
// Structured logging for libdepot: a message with key=value fields (jid, jobtype, ...). The
// default sink writes one logfmt line per event to stderr; give Worker your own to route them.
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace depot {

enum class LogLevel { debug, info, warn, error };

using LogFields = std::vector<std::pair<std::string, std::string>>;
using Logger = std::function<void(LogLevel, std::string_view message, const LogFields& fields)>;

// time=2026-11-25T22:30:00.123Z level=info msg="job done" jid=... jobtype=... (to stderr), for
// events at `min_level` and above.
Logger stderr_logger(LogLevel min_level = LogLevel::info);

// One logfmt line, without the trailing newline (what stderr_logger writes).
std::string format_logfmt(LogLevel level, std::string_view message, const LogFields& fields);

}  // namespace depot
