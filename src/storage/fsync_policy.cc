#include "storage/fsync_policy.h"

#include "common/numbers.h"

namespace depot::storage {

Result<FsyncPolicy> FsyncPolicy::parse(std::string_view text) {
  if (text == "always") return FsyncPolicy{FsyncMode::always, {}};
  if (text == "never") return FsyncPolicy{FsyncMode::never, {}};
  constexpr std::string_view kPrefix = "interval:";
  if (text.starts_with(kPrefix)) {
    std::string_view digits = text.substr(kPrefix.size());
    if (digits.ends_with("ms")) digits.remove_suffix(2);
    const auto ms = parse_integer<int64_t>(digits);
    if (ms && *ms > 0) return FsyncPolicy{FsyncMode::interval, std::chrono::milliseconds(*ms)};
  }
  return std::make_error_code(std::errc::invalid_argument);
}

std::string FsyncPolicy::to_string() const {
  switch (mode) {
    case FsyncMode::always:
      return "always";
    case FsyncMode::never:
      return "never";
    case FsyncMode::interval:
      return "interval:" + std::to_string(interval.count());
  }
  return "always";
}

}  // namespace depot::storage
